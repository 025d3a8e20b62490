package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/microctl/microctl/pkg/doctor"
)

// productionCheckNames are the doctor checks of issue 16, after the ring's
// own: whether private keys are sealed.
var productionCheckNames = []string{"keys.sealed"}

func productionChecks(ctx context.Context, s *Store, ring *Ring, now time.Time) []doctor.Result {
	return []doctor.Result{sealedCheck(s, ring)}
}

// sealedCheck warns about private keys kept in plaintext: anyone whose
// token may read <path>/private/ can sign tokens.
func sealedCheck(s *Store, ring *Ring) doctor.Result {
	r := doctor.Result{Check: "keys.sealed"}
	switch {
	case ring.LegacyPath != "":
		r.Status = doctor.Warn
		r.Detail = fmt.Sprintf("legacy HS256 ring: the shared secret is plaintext at %s and in %s, and cannot be sealed", ring.LegacyPath, s.PrivateKey(""))
		r.Hint = "move gateways to the JWKS and create a non-legacy ring"
	case ring.Sealed != "":
		r.Status = doctor.OK
		r.Detail = fmt.Sprintf("private keys sealed under KEK id %s", ring.Sealed)
	default:
		r.Status = doctor.Warn
		r.Detail = fmt.Sprintf("private keys are plaintext PKCS#8 PEM in KV: any token that may read %s can sign tokens", s.PrivateKey(""))
		r.Hint = "openssl rand -base64 32 > kek && microctl key seal --kek-file kek"
	}
	return r
}
