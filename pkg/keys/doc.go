// Package keys keeps a JWT signing key ring in Consul KV and verifies
// tokens against it, so keys can be rotated without breaking tokens in
// flight.
//
// A key goes next -> current -> previous -> retired. A next key is
// published in the JWKS a whole rotation before it signs, so every
// verifier knows it in time; a previous key stays verifiable until its
// retire_after, at least the longest token lifetime after it stopped
// signing. kids are RFC 7638 thumbprints. JOSE is done by
// github.com/lestrrat-go/jwx/v3.
//
// Operators change the ring through a Store (what `microctl key` uses):
// every change holds a Consul session lock and is written in one
// transaction fenced by that lock's session and checked against the
// ModifyIndex of everything read, then read back. Gateways verify with a
// Verifier, which reads only the public JWKS and follows it with a
// blocking query:
//
//	v, err := keys.StartVerifier(ctx, consul, keys.WithPath("micro/config/jwt"))
//	...
//	http.Handle("/", v.Middleware(proxy, nil))
package keys
