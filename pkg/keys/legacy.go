package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Legacy mode keeps {"key": "<secret>", "generation": N} at the legacy
// path for gateways like the seed's, which read the secret through
// go-config's Consul source and a go-config watcher. Two things in
// go-config (micro/go-micro config, v1.10.0 and v2.9.1) decide what a
// secret must look like and what a write must be:
//
//   - The watcher hands on the raw bytes of the string at its path
//     (config/loader/memory: ChangeSet.Data = value.Bytes()), and the json
//     reader parses them again with go-simplejson, whose UnmarshalJSON is
//     a json.Decoder that stops after the FIRST value; only when that
//     fails is the whole string kept (config/reader/json: newValues). So a
//     secret "9yKc..." reaches the gateway as the HMAC key "9", "true..."
//     as "true", " x" as "x". A secret must not start with anything a JSON
//     value can start with.
//   - The watcher drops a change whose bytes equal the value it cached
//     when it was made (config/default.go and loader/memory: "only process
//     changes"), and the seed makes a new watcher right after each event,
//     while the config's own copy may still hold the value before that
//     event. A change back to an earlier value can therefore be missed, so
//     every value written to the legacy path is one never written before.
//
// A missing key reads as the 4 bytes "null" through go-config: microctl
// never deletes the legacy path.

// jsonStart holds every byte a JSON value (RFC 8259) may start with,
// whitespace included, since a decoder skips it first.
const jsonStart = "0123456789-tfn\"[{ \t\r\n"

// ErrLegacyUnsafe says a shared secret would not reach go-config readers
// intact.
var ErrLegacyUnsafe = errors.New("go-config would not read this secret as it is")

// CheckLegacySecret reports whether go-config's watcher hands secret on
// unchanged. The error never quotes the secret.
func CheckLegacySecret(secret string) error {
	if secret == "" {
		return fmt.Errorf("%w: it is empty", ErrLegacyUnsafe)
	}
	if strings.IndexByte(jsonStart, secret[0]) >= 0 {
		// Which character, or what go-config makes of it, is not said: it
		// is part of the secret.
		return fmt.Errorf("%w: its first character is one a JSON value can start with (a digit, '-', 't', 'f', 'n', '\"', '[', '{' or whitespace), so gateways reading it through go-config verify with another, %d-byte key", ErrLegacyUnsafe, len(GoConfigReads(secret)))
	}
	if strings.Contains(secret, "${") {
		// go-config replaces ${VAR} with the environment before parsing.
		return fmt.Errorf("%w: it contains \"${\", which go-config replaces with an environment variable", ErrLegacyUnsafe)
	}
	return nil
}

// GoConfigReads returns the HMAC key a go-config watcher hands on for a
// string value at its path: the first JSON value in it when one parses
// (marshalled again, as go-simplejson's Bytes does for a non-string), else
// the string itself.
func GoConfigReads(raw string) string {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return string(b)
}

// maxSecretDraws bounds the rejection sampling of newLegacySecret: a draw
// is refused with probability 14/64, so 64 refusals in a row mean a broken
// random source, not bad luck.
const maxSecretDraws = 64

// newLegacySecret draws a 32-byte secret, base64url, and draws again while
// its first character is one a JSON value can start with (a digit, '-',
// 't', 'f' or 'n' in this alphabet). Rejection keeps the secret uniform
// over the safe strings; a fixed prefix would work too, but would mark
// every secret as microctl's.
func newLegacySecret(r io.Reader) (string, error) {
	b := make([]byte, 32)
	for range maxSecretDraws {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		s := base64.RawURLEncoding.EncodeToString(b)
		if CheckLegacySecret(s) == nil {
			return s, nil
		}
	}
	return "", errors.New("the random source gave 64 unusable secrets in a row")
}

// legacyDoc is the value at the legacy path. Generation is the ring's
// generation of the write, so no two writes are ever the same bytes even
// when the secret is (go-config drops a change equal to what it cached).
type legacyDoc struct {
	Key        string `json:"key"`
	Generation int64  `json:"generation"`
}

func legacyValue(secret string, generation int64) []byte {
	b, _ := json.Marshal(legacyDoc{Key: secret, Generation: generation})
	return b
}

// parseLegacy reads the secret out of a legacy value (with or without a
// generation: the seed's own value has none).
func parseLegacy(b []byte) (legacyDoc, error) {
	var d legacyDoc
	if err := requireObject(b); err != nil {
		return d, err
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&d); err != nil {
		return d, err
	}
	return d, nil
}

// LegacyStatus is what `key show` and doctor say about the legacy path.
// It never carries the secret.
type LegacyStatus struct {
	Path       string `json:"path"`
	Present    bool   `json:"present"`
	Readable   bool   `json:"readable"`
	Generation int64  `json:"generation,omitempty"`
	// Matches is true when the legacy path holds the ring's current key.
	Matches bool `json:"matches_current"`
	// Safe is false when go-config would hand gateways another key than
	// the secret (Problem says which); the next rotation fixes it.
	Safe    bool   `json:"safe"`
	Problem string `json:"problem,omitempty"`
}

// LegacyStatus reads the legacy path of a legacy-mode ring and judges the
// secret there. It needs read access to the legacy path; the current key's
// kid is compared through its thumbprint, so no private key is read.
func (s *Store) LegacyStatus(ctx context.Context, ring *Ring) (*LegacyStatus, error) {
	if ring == nil || ring.LegacyPath == "" {
		return nil, nil
	}
	st := &LegacyStatus{Path: ring.LegacyPath}
	e, err := s.kv.KVGet(ctx, ring.LegacyPath)
	if err != nil {
		return st, err
	}
	if e == nil {
		st.Problem = "missing: go-config readers (the seed's gateway) read the key \"null\""
		return st, nil
	}
	st.Present = true
	d, err := parseLegacy(e.Value)
	if err != nil {
		st.Problem = fmt.Sprintf("not a {\"key\": ...} object (%v): go-config cannot read it", err)
		return st, nil
	}
	st.Readable, st.Generation = true, d.Generation
	if m, err := fromSecret(d.Key); err == nil && ring.CurrentKey() != nil {
		st.Matches = m.kid == ring.CurrentKey().Kid
	}
	if err := CheckLegacySecret(d.Key); err != nil {
		st.Problem = err.Error()
		return st, nil
	}
	st.Safe = true
	if !st.Matches {
		st.Problem = "does not hold the ring's current key"
	}
	return st, nil
}

// LegacyRollbackError refuses `key rollback` in legacy mode: it would
// write an earlier secret back to the legacy path, a change go-config
// watchers (the seed's gateway) can miss, leaving gateways on the key
// rolled back from.
type LegacyRollbackError struct{ LegacyPath string }

func (e *LegacyRollbackError) Error() string {
	return fmt.Sprintf("legacy mode: rollback would write an earlier secret back to %s, and gateways reading it through go-config can miss a change back to an earlier value", e.LegacyPath)
}

// Hint says what to do instead.
func (e *LegacyRollbackError) Hint() string {
	return "microctl key rotate writes a fresh secret instead; or restore the key by hand and restart every gateway"
}
