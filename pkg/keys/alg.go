package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Alg is a JWS signature algorithm the ring can hold.
type Alg string

const (
	EdDSA Alg = "EdDSA" // Ed25519: the default, small and fast
	ES256 Alg = "ES256" // ECDSA P-256 with SHA-256
	RS256 Alg = "RS256" // RSA PKCS#1 v1.5 with SHA-256; --bits
	HS256 Alg = "HS256" // HMAC shared secret: legacy mode only, never in a JWKS
)

// Algs lists the algorithms in the order help texts show them.
var Algs = []Alg{EdDSA, ES256, RS256, HS256}

// DefaultRSABits is the RSA modulus size unless --bits says otherwise.
const DefaultRSABits = 2048

// ParseAlg accepts an algorithm name, case-insensitively.
func ParseAlg(s string) (Alg, error) {
	for _, a := range Algs {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	names := make([]string, len(Algs))
	for i, a := range Algs {
		names[i] = string(a)
	}
	return "", fmt.Errorf("unknown algorithm %q: use one of %s", s, strings.Join(names, ", "))
}

// Symmetric reports whether the algorithm uses a shared secret.
func (a Alg) Symmetric() bool { return a == HS256 }

func (a Alg) jwa() jwa.SignatureAlgorithm {
	switch a {
	case EdDSA:
		return jwa.EdDSA()
	case ES256:
		return jwa.ES256()
	case RS256:
		return jwa.RS256()
	case HS256:
		return jwa.HS256()
	}
	return jwa.EmptySignatureAlgorithm()
}

// ValidateBits checks an RSA modulus size. Under 2048 bits is refused
// outright: NIST and every JOSE profile retired it years ago.
func ValidateBits(a Alg, bits int) error {
	if a != RS256 {
		if bits != 0 {
			return fmt.Errorf("--bits applies to RS256 only, not %s", a)
		}
		return nil
	}
	switch bits {
	case 0, 2048, 3072, 4096:
		return nil
	}
	return fmt.Errorf("RSA key size %d: use 2048, 3072 or 4096", bits)
}

// material is a key pair (or secret) in memory. It is never printed: its
// String and GoString redact, so a stray %v in a log cannot leak it.
type material struct {
	kid    string
	alg    Alg
	signer any // ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey, or []byte (HS256)
	public jwk.Key
}

func (m *material) String() string   { return "keys.material{kid: " + m.kid + ", private: REDACTED}" }
func (m *material) GoString() string { return m.String() }

// generate makes a new key of alg, reading randomness from r.
func generate(r io.Reader, alg Alg, bits int) (*material, error) {
	if r == nil {
		r = rand.Reader
	}
	var priv any
	switch alg {
	case EdDSA:
		_, k, err := ed25519.GenerateKey(r)
		if err != nil {
			return nil, err
		}
		priv = k
	case ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), r)
		if err != nil {
			return nil, err
		}
		priv = k
	case RS256:
		if bits == 0 {
			bits = DefaultRSABits
		}
		k, err := rsa.GenerateKey(r, bits)
		if err != nil {
			return nil, err
		}
		priv = k
	case HS256:
		// The seed's gateway uses the string's bytes as the HMAC key, so
		// the secret is kept as text that go-config passes on intact
		// (legacy.go).
		secret, err := newLegacySecret(r)
		if err != nil {
			return nil, err
		}
		return fromSecret(secret)
	default:
		return nil, fmt.Errorf("unknown algorithm %q", alg)
	}
	return fromPrivate(alg, priv)
}

// fromSecret wraps an HS256 shared secret.
func fromSecret(secret string) (*material, error) {
	if len(secret) < 16 {
		return nil, errors.New("shared secret shorter than 16 bytes")
	}
	k, err := jwk.Import([]byte(secret))
	if err != nil {
		return nil, err
	}
	kid, err := thumbprint(k)
	if err != nil {
		return nil, err
	}
	if err := decorate(k, kid, HS256); err != nil {
		return nil, err
	}
	return &material{kid: kid, alg: HS256, signer: []byte(secret), public: k}, nil
}

// fromPrivate derives the public JWK and the RFC 7638 thumbprint kid.
func fromPrivate(alg Alg, priv any) (*material, error) {
	var pub crypto.PublicKey
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		if alg != EdDSA {
			return nil, fmt.Errorf("an Ed25519 key cannot sign %s", alg)
		}
		pub = k.Public()
	case *ecdsa.PrivateKey:
		if alg != ES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an ECDSA %s key cannot sign %s", k.Curve.Params().Name, alg)
		}
		pub = k.Public()
	case *rsa.PrivateKey:
		if alg != RS256 {
			return nil, fmt.Errorf("an RSA key cannot sign %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 are needed", k.N.BitLen())
		}
		pub = k.Public()
	default:
		return nil, fmt.Errorf("unsupported private key type %T", priv)
	}
	k, err := jwk.Import(pub)
	if err != nil {
		return nil, err
	}
	kid, err := thumbprint(k)
	if err != nil {
		return nil, err
	}
	if err := decorate(k, kid, alg); err != nil {
		return nil, err
	}
	return &material{kid: kid, alg: alg, signer: priv, public: k}, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url without padding:
// the kid of every key in the ring, so a kid names exactly one key.
func thumbprint(k jwk.Key) (string, error) {
	b, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decorate(k jwk.Key, kid string, alg Alg) error {
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg.jwa(), jwk.KeyUsageKey: "sig"} {
		if err := k.Set(name, v); err != nil {
			return err
		}
	}
	return nil
}

// privateDoc is the value at <path>/private/<kid>: one key's private half,
// PKCS#8 PEM (or the shared secret for HS256). It is written once, when the
// key is made, and deleted when the key is retired.
type privateDoc struct {
	Kid       string    `json:"kid"`
	Alg       Alg       `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	PEM       string    `json:"pem,omitempty"`
	Secret    string    `json:"secret,omitempty"`
	// Sealed replaces PEM when the ring is sealed under a KEK (seal.go).
	Sealed *sealedBox `json:"sealed,omitempty"`
}

func (m *material) doc(created time.Time) (privateDoc, error) {
	d := privateDoc{Kid: m.kid, Alg: m.alg, CreatedAt: created}
	if m.alg == HS256 {
		d.Secret = string(m.signer.([]byte))
		return d, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(m.signer)
	if err != nil {
		return d, err
	}
	d.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return d, nil
}

// material decodes the private key and checks that it is the key its kid
// and alg claim to be.
func (d privateDoc) material() (*material, error) {
	alg, err := ParseAlg(string(d.Alg))
	if err != nil {
		return nil, err
	}
	var m *material
	if alg == HS256 {
		m, err = fromSecret(d.Secret)
	} else {
		block, rest := pem.Decode([]byte(d.PEM))
		if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
			return nil, errors.New("pem is not one PKCS#8 PRIVATE KEY block")
		}
		priv, perr := x509.ParsePKCS8PrivateKey(block.Bytes)
		if perr != nil {
			return nil, fmt.Errorf("pem: %w", perr)
		}
		m, err = fromPrivate(alg, priv)
	}
	if err != nil {
		return nil, err
	}
	if m.kid != d.Kid {
		return nil, fmt.Errorf("the key's thumbprint is %s, not the kid %s it is stored under", m.kid, d.Kid)
	}
	return m, nil
}
