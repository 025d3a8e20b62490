package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/microctl/microctl/pkg/doctor"
)

// productionCheckNames are the doctor checks of issue 16, after the ring's
// own: whether private keys are sealed.
var productionCheckNames = []string{"keys.sealed", "keys.rotator"}

func productionChecks(ctx context.Context, s *Store, ring *Ring, now time.Time) []doctor.Result {
	return []doctor.Result{sealedCheck(s, ring), rotatorCheck(ctx, s, ring, now)}
}

// rotatorCheck says whether a rotator leads the ring, when the ring last
// rotated and when it will next.
func rotatorCheck(ctx context.Context, s *Store, ring *Ring, now time.Time) doctor.Result {
	r := doctor.Result{Check: "keys.rotator", Status: doctor.OK}
	st, err := s.Rotator(ctx, ring)
	if err != nil {
		r.Status, r.Detail, r.Hint = doctor.Warn, "cannot read "+s.RotatorKey()+": "+err.Error(), doctor.HintOf(err)
		return r
	}
	last := "never"
	if st.LastRotated != nil {
		last = st.LastRotated.UTC().Format(time.RFC3339)
	}
	if !st.Running {
		r.Detail = fmt.Sprintf("no rotator runs (%s has no holder); last rotated %s", s.RotatorKey(), last)
		r.Hint = "microctl key schedule --every 30d deploys one"
		return r
	}
	r.Detail = fmt.Sprintf("rotator %s rotates every %s; last rotated %s", st.Who, HumanDuration(st.Every), last)
	if st.Next != nil {
		r.Detail += ", next " + st.Next.UTC().Format(time.RFC3339)
		if now.After(st.Next.Add(st.Every / 10)) {
			r.Status = doctor.Warn
			r.Detail += " (overdue)"
			r.Hint = "look at the rotator's log: docker service logs <stack>_key-rotator"
		}
	}
	return r
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
