package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"time"
)

// Sealed private keys (format version 1).
//
// With a key-encryption key (KEK), the value at <path>/private/<kid> keeps
// its public members and replaces "pem" with "sealed":
//
//	{"kid": "...", "alg": "EdDSA", "created_at": "...",
//	 "sealed": {"v": 1, "kek": "<KEK id>", "nonce": "<base64>", "ct": "<base64>"}}
//
// ct is AES-256-GCM (crypto/aes, crypto/cipher) of the key's PKCS#8 DER
// under the KEK, with a random 96-bit nonce from crypto/rand and the
// additional data "microctl-sealed-key/v1" NUL path NUL kid NUL alg: a
// sealed value copied to another kid, another ring path or another alg does
// not open. The KEK id is HMAC-SHA256(KEK, "microctl kek id"), first 8 bytes,
// base64url: it names which KEK sealed a value without saying anything
// about the KEK. The ring records the id of the KEK that sealed it
// (ring.sealed), so a command can say "sealed, give me the KEK" from the
// public ring alone.
const sealVersion = 1

const sealAADPrefix = "microctl-sealed-key/v1"

// KEK is a key-encryption key: 32 random bytes. It is never printed.
type KEK struct {
	key [32]byte
	id  string
}

func (k *KEK) String() string   { return "keys.KEK{id: " + k.id + ", key: REDACTED}" }
func (k *KEK) GoString() string { return k.String() }

// ID names the KEK without revealing it.
func (k *KEK) ID() string { return k.id }

// NewKEK makes a KEK from 32 bytes.
func NewKEK(b []byte) (*KEK, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("a key-encryption key is 32 bytes, not %d", len(b))
	}
	k := &KEK{}
	copy(k.key[:], b)
	m := hmac.New(sha256.New, k.key[:])
	m.Write([]byte("microctl kek id"))
	k.id = base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:8])
	return k, nil
}

// ParseKEK reads a KEK as `openssl rand -base64 32` writes it: 44
// characters of standard base64 (with padding) and a newline. Anything
// else is refused: a passphrase or a hex string would be a weaker or
// different key than the operator thinks.
func ParseKEK(b []byte) (*KEK, error) {
	s := bytes.TrimSpace(b)
	raw, err := base64.StdEncoding.Strict().DecodeString(string(s))
	if err != nil || len(raw) != 32 {
		return nil, errNotKEK
	}
	return NewKEK(raw)
}

var errNotKEK = errors.New("not a key-encryption key: want 32 random bytes, base64 encoded, as `openssl rand -base64 32` writes them")

// ReadKEKFile reads a KEK file (--kek-file, MICROCTL_KEK_FILE, a Docker
// secret). The error names the file, never its content.
func ReadKEKFile(path string) (*KEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > 1024 {
		return nil, fmt.Errorf("%s: %w", path, errNotKEK)
	}
	k, err := ParseKEK(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WithKEK makes every private key the store writes sealed under k, and
// lets it open sealed ones.
func WithKEK(k *KEK) Option { return func(o *Options) { o.KEK = k } }

// sealedBox is the "sealed" member of a private key value.
type sealedBox struct {
	V     int    `json:"v"`
	KEK   string `json:"kek"`
	Nonce string `json:"nonce"`
	CT    string `json:"ct"`
}

func sealAAD(path, kid string, alg Alg) []byte {
	return []byte(sealAADPrefix + "\x00" + path + "\x00" + kid + "\x00" + string(alg))
}

func (k *KEK) aead() (cipher.AEAD, error) {
	blk, err := aes.NewCipher(k.key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// seal encrypts m's private key for the ring at path.
func (k *KEK) seal(path string, m *material, created time.Time) (privateDoc, error) {
	d := privateDoc{Kid: m.kid, Alg: m.alg, CreatedAt: created}
	if m.alg.Symmetric() {
		return d, ErrLegacySeal
	}
	der, err := x509.MarshalPKCS8PrivateKey(m.signer)
	if err != nil {
		return d, err
	}
	a, err := k.aead()
	if err != nil {
		return d, err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return d, err
	}
	ct := a.Seal(nil, nonce, der, sealAAD(path, m.kid, m.alg))
	clear(der)
	d.Sealed = &sealedBox{V: sealVersion, KEK: k.id, Nonce: base64.StdEncoding.EncodeToString(nonce), CT: base64.StdEncoding.EncodeToString(ct)}
	return d, nil
}

// open decrypts a sealed private key stored under kid in the ring at path
// and checks it is the key its kid claims to be.
func (k *KEK) open(path string, d privateDoc) (*material, error) {
	b := d.Sealed
	if b.V != sealVersion {
		return nil, fmt.Errorf("sealed with format version %d: this microctl understands %d", b.V, sealVersion)
	}
	if b.KEK != k.id {
		return nil, &WrongKEKError{Have: k.id, Want: b.KEK}
	}
	nonce, err1 := base64.StdEncoding.DecodeString(b.Nonce)
	ct, err2 := base64.StdEncoding.DecodeString(b.CT)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("sealed value: %w", err)
	}
	a, err := k.aead()
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, errors.New("sealed value: bad nonce length")
	}
	der, err := a.Open(nil, nonce, ct, sealAAD(path, d.Kid, d.Alg))
	if err != nil {
		// GCM says only "message authentication failed": wrong KEK bytes
		// under a matching id cannot happen, so the value was changed or
		// moved from another kid, ring or alg.
		return nil, errors.New("sealed value does not open: it was altered, or moved here from another kid, ring path or algorithm")
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("sealed value: %w", err)
	}
	m, err := fromPrivate(d.Alg, priv)
	if err != nil {
		return nil, err
	}
	if m.kid != d.Kid {
		return nil, fmt.Errorf("the key's thumbprint is %s, not the kid %s it is stored under", m.kid, d.Kid)
	}
	return m, nil
}

// ErrLegacySeal: HS256 secrets cannot be sealed, because the seed's
// gateway reads the shared secret raw from the legacy path anyway.
var ErrLegacySeal = errors.New("legacy HS256 rings cannot be sealed: the seed's gateway reads the shared secret raw from the legacy path, so sealing its copy in the ring would protect nothing")

// SealedError means the ring is sealed and no KEK was given. Nothing was
// changed.
type SealedError struct {
	Path  string
	KEKID string
}

func (e *SealedError) Error() string {
	return fmt.Sprintf("the key ring at %s is sealed (KEK id %s): its private keys need the key-encryption key; nothing was changed", e.Path, e.KEKID)
}

// Hint says what to do about it.
func (e *SealedError) Hint() string { return "pass --kek-file FILE or set MICROCTL_KEK_FILE" }

// WrongKEKError means the KEK given is not the one that sealed the ring.
type WrongKEKError struct {
	Have, Want string
}

func (e *WrongKEKError) Error() string {
	return fmt.Sprintf("wrong key-encryption key: the ring is sealed under KEK id %s, --kek-file holds KEK id %s; nothing was changed", e.Want, e.Have)
}

// Hint says what to do about it.
func (e *WrongKEKError) Hint() string {
	return "use the KEK file the ring was sealed with; microctl key show names its id"
}

// NotSealedError means a KEK was given for a ring whose private keys are
// plaintext: writing sealed keys next to plaintext ones would leave the
// ring half protected.
type NotSealedError struct{ Path string }

func (e *NotSealedError) Error() string {
	return fmt.Sprintf("the key ring at %s is not sealed: its private keys are plaintext in KV; nothing was changed", e.Path)
}

// Hint says what to do about it.
func (e *NotSealedError) Hint() string {
	return "seal it first with microctl key seal --kek-file FILE, or leave out --kek-file"
}

// openDoc decodes a stored private key, opening it with the store's KEK
// when it is sealed.
func (s *Store) openDoc(d privateDoc) (*material, error) {
	if d.Sealed == nil {
		if d.PEM == "" && d.Secret == "" {
			return nil, errors.New("neither pem, secret nor sealed")
		}
		return d.material()
	}
	if d.PEM != "" || d.Secret != "" {
		return nil, errors.New("both sealed and plaintext")
	}
	if s.o.KEK == nil {
		return nil, &SealedError{Path: s.o.Path, KEKID: d.Sealed.KEK}
	}
	return s.o.KEK.open(s.o.Path, d)
}

// checkSealing compares the ring's sealing with the store's KEK before
// anything else is read: a sealed ring without a KEK, or with another
// KEK, stops here with one line.
func (s *Store) checkSealing(r *Ring) error {
	if r == nil || r.Sealed == "" {
		return nil
	}
	if s.o.KEK == nil {
		return &SealedError{Path: s.o.Path, KEKID: r.Sealed}
	}
	if s.o.KEK.id != r.Sealed {
		return &WrongKEKError{Have: s.o.KEK.id, Want: r.Sealed}
	}
	return nil
}

// docFor makes the value to store for a new private key: sealed when the
// change seals (ch.sealWith), plaintext otherwise.
func (s *Store) docFor(ch *change, m *material, created time.Time) (privateDoc, error) {
	if ch.sealWith != nil {
		return ch.sealWith.seal(s.o.Path, m, created)
	}
	return m.doc(created)
}

// SealOptions are the inputs of Seal and Rekey.
type SealOptions struct {
	DryRun bool
}

// Seal encrypts every private key of a plaintext ring under the store's
// KEK, in one fenced transaction with the ring (which then records the
// KEK's id): all sealed, or nothing changed.
func (s *Store) Seal(ctx context.Context, o SealOptions) (*Result, error) {
	if s.o.KEK == nil {
		return nil, errors.New("key seal needs --kek-file (or MICROCTL_KEK_FILE)")
	}
	return s.update(ctx, "seal", o.DryRun, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring == nil {
			return nil, &NoRingError{Path: s.o.Path}
		}
		if snap.Ring.LegacyPath != "" {
			return nil, ErrLegacySeal
		}
		if snap.Ring.Sealed != "" {
			return &change{res: Result{Current: snap.Ring.CurrentKey().Kid,
				Warnings: []string{"the ring is already sealed under this KEK; nothing to do"}}}, nil
		}
		ring := snap.Ring.clone()
		ring.Sealed = s.o.KEK.id
		return &change{ring: ring, sealWith: s.o.KEK, rewrite: true}, nil
	})
}

// Rekey re-seals every private key of a sealed ring under newKEK, in one
// fenced transaction. The store's KEK opens them.
func (s *Store) Rekey(ctx context.Context, newKEK *KEK, o SealOptions) (*Result, error) {
	if s.o.KEK == nil || newKEK == nil {
		return nil, errors.New("key rekey needs --kek-file (the current KEK) and --new-kek-file")
	}
	return s.update(ctx, "rekey", o.DryRun, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring == nil {
			return nil, &NoRingError{Path: s.o.Path}
		}
		if snap.Ring.Sealed == "" {
			return nil, &NotSealedError{Path: s.o.Path}
		}
		if newKEK.id == s.o.KEK.id {
			return nil, errors.New("--new-kek-file holds the same KEK as --kek-file")
		}
		ring := snap.Ring.clone()
		ring.Sealed = newKEK.id
		return &change{ring: ring, sealWith: newKEK, rewrite: true}, nil
	})
}

// sealPolicy decides how a planned change writes private keys: a sealed
// ring seals everything under the store's KEK (Load has checked it is the
// ring's); a KEK given for a plaintext ring is refused except by init
// (which creates the ring sealed) and seal, so a ring is never half sealed.
func (s *Store) sealPolicy(snap *Snapshot, ch *change, op string) error {
	if ch.sealWith != nil {
		return nil // seal, rekey
	}
	switch {
	case op == "init" && s.o.KEK != nil:
		if ch.ring.LegacyPath != "" {
			return ErrLegacySeal
		}
		ch.ring.Sealed = s.o.KEK.id
		ch.sealWith = s.o.KEK
	case snap.Ring != nil && snap.Ring.Sealed != "":
		if s.o.KEK == nil { // Load refuses this already; never write plaintext into a sealed ring
			return &SealedError{Path: s.o.Path, KEKID: snap.Ring.Sealed}
		}
		ch.sealWith = s.o.KEK
	case s.o.KEK != nil:
		return &NotSealedError{Path: s.o.Path}
	}
	return nil
}
