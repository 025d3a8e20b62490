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
type MalformedTag struct {
	Tag    string `json:"tag"`
	Reason string `json:"reason"`
}

// Decoded is what a service's tags say in go-micro's terms.
type Decoded struct {
	Version   string            `json:"version,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Endpoints []Endpoint        `json:"endpoints,omitempty"`
	// Other holds tags that are not go-micro's, as they are.
	Other []string `json:"other_tags,omitempty"`
	// Malformed holds go-micro-looking tags that did not decode; they are
	// shown raw with a warning, never dropped silently and never fatal.
	Malformed []MalformedTag `json:"malformed_tags,omitempty"`
}

// DecodeTags decodes go-micro tags in both the current (t-, e-, v-) and the
// legacy (t=, e=, v=) forms. Unlike go-micro, which keeps only the form of
// the first tag it meets, it decodes every tag, so a registration that mixes
// forms is shown whole.
func DecodeTags(tags []string) Decoded {
	var d Decoded
	for _, tag := range tags {
		if len(tag) < 2 || !strings.ContainsRune("tev", rune(tag[0])) || (tag[1] != '-' && tag[1] != '=') {
			d.Other = append(d.Other, tag)
			continue
		}
		body := []byte(tag[2:])
		if tag[1] == '-' {
			b, err := decompress(tag[2:])
			if err != nil {
				d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: err.Error()})
				continue
			}
			body = b
		}
		switch tag[0] {
		case 't':
			var kv map[string]string
			if err := json.Unmarshal(body, &kv); err != nil {
				d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: "metadata is not a JSON object of strings"})
				continue
			}
			if d.Metadata == nil {
				d.Metadata = map[string]string{}
			}
			maps.Copy(d.Metadata, kv)
		case 'e':
			var ep Endpoint
			if err := json.Unmarshal(body, &ep); err != nil {
				d.Malformed = append(d.Malformed, MalformedTag{Tag: tag, Reason: "endpoint is not a JSON endpoint"})
				continue
			}
			d.Endpoints = append(d.Endpoints, ep)
		case 'v':
			d.Version = string(body)
		}
	}
	return d
}
