package registry

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
)

// go-micro's Consul registry (registry/consul in go-micro v1, go-plugins v2)
// stores what Consul has no field for in service tags:
//
//	t-<hex(zlib(JSON {"key":"value"}))>  one per metadata pair
//	e-<hex(zlib(JSON endpoint))>         one per endpoint
//	v-<hex(zlib(version))>               the service version
//
// and the older, uncompressed forms t=<JSON>, e=<JSON>, v=<version>. This
// file encodes and decodes both, byte for byte as go-micro does.

// Endpoint is a go-micro endpoint, as go-micro marshals it.
type Endpoint struct {
	Name     string            `json:"name"`
	Request  *Value            `json:"request"`
	Response *Value            `json:"response"`
	Metadata map[string]string `json:"metadata"`
}

// Value describes a request or response type of an endpoint.
type Value struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Values []*Value `json:"values"`
}

// Meta keys under which microctl's examples publish their registration
// timing. Consul returns neither a TTL check's TTL nor the re-registration
// interval, so without these they are unknowable from outside (FACTS.md).
const (
	MetaRegisterTTL      = "micro_register_ttl"
	MetaRegisterInterval = "micro_register_interval"
	// MetaDeregisterAfter carries the check's DeregisterCriticalServiceAfter,
	// which no Consul endpoint returns either.
	MetaDeregisterAfter = "micro_deregister_critical_after"
)

// compress is go-micro's encode(): zlib at the default level, then hex.
func compress(b []byte) string {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write(b) // writes to a bytes.Buffer cannot fail
	_ = w.Close()
	return hex.EncodeToString(buf.Bytes())
}

// maxDecoded bounds what one tag may inflate to: a tag is at most a few
// hundred bytes, so a zlib bomb in a hostile registration must not exhaust
// memory.
const maxDecoded = 1 << 20

// inflaters keeps zlib readers for reuse: each holds a 32 KB window and
// Huffman tables (about 40 KB), and a catalog of 2,000 instances carries
// some 15,000 tags; allocating one per tag made decoding the slowest part
// of reading the catalog.
var inflaters sync.Pool

func decompress(s string) ([]byte, error) {
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %w", err)
	}
	var r io.ReadCloser
	if pooled, ok := inflaters.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(bytes.NewReader(raw), nil); err != nil {
			inflaters.Put(pooled)
			return nil, fmt.Errorf("not zlib: %w", err)
		}
		r = pooled
	} else if r, err = zlib.NewReader(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("not zlib: %w", err)
	}
	defer func() { r.Close(); inflaters.Put(r) }()
	out, err := io.ReadAll(io.LimitReader(r, maxDecoded+1))
	if err != nil {
		return nil, fmt.Errorf("corrupt zlib stream: %w", err)
	}
	if len(out) > maxDecoded {
		return nil, fmt.Errorf("inflates beyond %d bytes", maxDecoded)
	}
	return out, nil
}

// EncodeMetadata returns one t- tag per pair, in key order so that the same
// metadata always gives the same tags (go-micro iterates a map; Consul does
// not care about order, but tests and diffs do).
func EncodeMetadata(md map[string]string) []string {
	tags := make([]string, 0, len(md))
	for _, k := range slices.Sorted(maps.Keys(md)) {
		b, _ := json.Marshal(map[string]string{k: md[k]})
		tags = append(tags, "t-"+compress(b))
	}
	return tags
}

// EncodeEndpoints returns one e- tag per endpoint.
func EncodeEndpoints(eps []Endpoint) []string {
	tags := make([]string, 0, len(eps))
	for _, ep := range eps {
		b, _ := json.Marshal(ep)
		tags = append(tags, "e-"+compress(b))
	}
	return tags
}

// EncodeVersion returns the v- tag for version.
func EncodeVersion(version string) string { return "v-" + compress([]byte(version)) }

// MalformedTag is a tag that looks like go-micro's but does not decode.
// Reason says why, and what go-micro does with it.
type MalformedTag struct {
	Tag    string `json:"tag"`
	Reason string `json:"reason"`
}

// TagHazard is a tag that makes go-micro's own decoders misbehave for the
// whole registration, not just lose the tag: Effect says how.
type TagHazard struct {
	Tag    string `json:"tag"`
	Effect string `json:"effect"`
}

// Decoded is what a service's tags say in go-micro's terms: exactly what
// go-micro's Consul registry (registry/consul/encoding.go in v1.10.0, the
// same in go-plugins v2) reads from them.
type Decoded struct {
	Version string `json:"version,omitempty"`
	// HasVersion tells an empty version (a v- tag of "") from none.
	HasVersion bool              `json:"has_version"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Endpoints  []Endpoint        `json:"endpoints,omitempty"`
	// Other holds tags that are not go-micro's, as they are.
	Other []string `json:"other_tags,omitempty"`
	// Malformed holds go-micro-looking tags that did not decode; they are
	// shown raw with a warning, never dropped silently and never fatal.
	Malformed []MalformedTag `json:"malformed_tags,omitempty"`
	// Skipped holds tags go-micro reads past: a second form of metadata or
	// endpoints (go-micro keeps the first form it meets; the 2016 encoder
	// wrote every endpoint as e= and e-) and version tags after the first.
	Skipped []MalformedTag `json:"skipped_tags,omitempty"`
	// Hazards are tags that break go-micro's decoders (FACTS.md).
	Hazards []TagHazard `json:"hazards,omitempty"`
}

// DecodeTags decodes go-micro tags the way go-micro does. For metadata (t)
// and endpoints (e) go-micro looks at every tag starting with that letter
// and keeps only those whose second character is the one of the FIRST
// such tag: t-/e- (hex zlib) or t=/e= (plain JSON). A plain tag starting
// with t or e ahead of go-micro's tags therefore sets a form no go-micro
// tag has, and go-micro drops every metadata pair or endpoint; a tag that
// is just "t" or "e" makes it index past the end (GetService panics). The
// version is the first v- or v= tag, "" when it does not decode.
func DecodeTags(tags []string) Decoded {
	var d Decoded
	for _, tag := range tags {
		if len(tag) < 2 || !strings.ContainsRune("tev", rune(tag[0])) || (tag[1] != '-' && tag[1] != '=') {
			d.Other = append(d.Other, tag)
		}
	}
	d.decodeForm('t', tags)
	d.decodeForm('e', tags)
	for _, tag := range tags {
		if len(tag) < 2 || tag[0] != 'v' || (tag[1] != '-' && tag[1] != '=') {
			continue
		}
		if d.HasVersion {
			d.Skipped = append(d.Skipped, MalformedTag{Tag: tag, Reason: "go-micro takes the first version tag only"})
			continue
		}
		d.HasVersion = true
		if tag[1] == '=' {
			d.Version = tag[2:]
			continue
		}
		b, err := decompress(tag[2:])
		if err != nil {
			d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: err.Error() + "; go-micro reads the version as empty"})
			continue
		}
		d.Version = string(b)
	}
	return d
}

var kindName = map[byte]string{'t': "metadata", 'e': "endpoints"}

// panicEffect: go-micro's decoders read tag[1] of every tag starting with
// the letter without checking its length. decodeEndpoints runs for every
// service GetService returns; decodeMetadata for each instance that is
// not critical.
var panicEffect = map[byte]string{
	'e': "go-micro's GetService panics on it (decodeEndpoints reads the tag's second character: index out of range): no go-micro client can resolve this service",
	't': "go-micro's GetService panics on it whenever the instance is not critical (decodeMetadata reads the tag's second character: index out of range): no go-micro client can resolve this service",
}

// decodeForm reads the metadata ('t') or endpoint ('e') tags as go-micro's
// decodeMetadata / decodeEndpoints do.
func (d *Decoded) decodeForm(kind byte, tags []string) {
	var form byte // the second character of the first tag of this kind
	var formTag string
	goMicroLost := 0
	for _, tag := range tags {
		if len(tag) == 0 || tag[0] != kind {
			continue
		}
		if len(tag) == 1 {
			d.Hazards = append(d.Hazards, TagHazard{Tag: tag, Effect: panicEffect[kind]})
			continue
		}
		ours := tag[1] == '-' || tag[1] == '='
		if form != 0 && tag[1] != form {
			if ours {
				if formOK(formTag) {
					d.Skipped = append(d.Skipped, MalformedTag{Tag: tag, Reason: fmt.Sprintf("go-micro reads only the first form it meets (%c%c)", kind, form)})
				} else {
					goMicroLost++
				}
			}
			continue
		}
		if form == 0 {
			form, formTag = tag[1], tag
		}
		if !ours {
			continue // a plain tag of the same "form": go-micro fails to decode it, silently
		}
		d.decodeOne(kind, tag)
	}
	if goMicroLost > 0 {
		d.Hazards = append(d.Hazards, TagHazard{Tag: formTag, Effect: fmt.Sprintf(
			"it comes before go-micro's %s tags, so go-micro reads only tags starting %q and drops all %d of them: the service has no %s in go-micro",
			kind2(kind), formTag[:2], goMicroLost, kindName[kind])})
	}
}

func kind2(kind byte) string {
	if kind == 't' {
		return "metadata (t-)"
	}
	return "endpoint (e-)"
}

// formOK reports whether the tag that set the form is one of go-micro's
// own forms, so that tags of the other form are a harmless second copy.
func formOK(tag string) bool { return tag[1] == '-' || tag[1] == '=' }

func (d *Decoded) decodeOne(kind byte, tag string) {
	body := []byte(tag[2:])
	if tag[1] == '-' {
		b, err := decompress(tag[2:])
		if err != nil {
			d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: err.Error() + lostWhat(kind)})
			return
		}
		body = b
	}
	switch kind {
	case 't':
		var kv map[string]string
		if err := json.Unmarshal(body, &kv); err != nil {
			d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: "metadata is not a JSON object of strings" + lostWhat(kind)})
			return
		}
		if d.Metadata == nil {
			d.Metadata = map[string]string{}
		}
		maps.Copy(d.Metadata, kv)
	case 'e':
		var ep Endpoint
		if string(bytes.TrimSpace(body)) == "null" {
			d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: "endpoint is JSON null: go-micro lists it as a nil endpoint"})
			return
		}
		if err := json.Unmarshal(body, &ep); err != nil {
			d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: "endpoint is not a JSON endpoint" + lostWhat(kind)})
			return
		}
		d.Endpoints = append(d.Endpoints, ep)
	}
}

func lostWhat(kind byte) string {
	if kind == 't' {
		return "; go-micro skips it: those metadata pairs are lost"
	}
	return "; go-micro skips it: that endpoint is lost"
}
