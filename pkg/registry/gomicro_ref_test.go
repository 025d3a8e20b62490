package registry

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// goMicroRef is go-micro's decodeMetadata, decodeEndpoints and
// decodeVersion (registry/consul/encoding.go, v1.10.0) transcribed as
// literally as Go allows, for comparison with DecodeTags: same loops, same
// unchecked tag[1], so it panics where go-micro panics.
type goMicroRef struct {
	md       map[string]string
	eps      []string
	version  string
	hasVer   bool
	panicked bool
}

func refDecode(tags []string) (r goMicroRef) {
	defer func() {
		if recover() != nil {
			r.panicked = true
		}
	}()
	r.md = map[string]string{}
	var ver byte
	for _, tag := range tags {
		if len(tag) == 0 || tag[0] != 't' {
			continue
		}
		if ver > 0 && tag[1] != ver {
			continue
		}
		var kv map[string]string
		var buf []byte
		if tag[1] == '=' {
			buf = []byte(tag[2:])
		}
		if tag[1] == '-' {
			buf, _ = decompress(tag[2:])
		}
		if err := json.Unmarshal(buf, &kv); err == nil {
			for k, v := range kv {
				r.md[k] = v
			}
		}
		ver = tag[1]
	}
	ver = 0
	for _, tag := range tags {
		if len(tag) == 0 || tag[0] != 'e' {
			continue
		}
		if ver > 0 && tag[1] != ver {
			continue
		}
		var e *Endpoint
		var buf []byte
		if tag[1] == '=' {
			buf = []byte(tag[2:])
		}
		if tag[1] == '-' {
			buf, _ = decompress(tag[2:])
		}
		if err := json.Unmarshal(buf, &e); err == nil {
			if e == nil {
				r.eps = append(r.eps, "<nil>") // go-micro appends a nil *Endpoint
			} else {
				r.eps = append(r.eps, e.Name)
			}
		}
		ver = tag[1]
	}
	for _, tag := range tags {
		if len(tag) < 2 || tag[0] != 'v' {
			continue
		}
		if tag[1] == '=' {
			r.version, r.hasVer = tag[2:], true
			break
		}
		if tag[1] == '-' {
			b, _ := decompress(tag[2:])
			r.version, r.hasVer = string(b), true
			break
		}
	}
	return r
}

// TestDecodeTagsAgreesWithGoMicro draws 20,000 tag lists from go-micro's
// own forms, their legacy forms, broken ones and plain tags that start
// with t, e or v, and checks that DecodeTags reads what go-micro reads, and
// reports a hazard exactly when go-micro panics or loses tags to a plain
// tag's "form".
func TestDecodeTagsAgreesWithGoMicro(t *testing.T) {
	vocab := []string{
		vecKV, vecProtocolMucp, vecWithSpace, `t={"a":"b"}`, `t={"k":"x"}`, "t-zz", "t=[1]",
		EncodeEndpoints([]Endpoint{{Name: "A.One"}})[0], EncodeEndpoints([]Endpoint{{Name: "A.Two"}})[0],
		`e={"name":"A.One"}`, `e={"name":"B.Three"}`, "e-zz", "e=null",
		vecVersion100, vecVersionEmpty, vecVersionLatest, "v=2", "v-zz",
		"traefik.enable=true", "edge", "tag", "e", "t", "v", "vip", "primary", "x-1", "",
	}
	rng := rand.New(rand.NewPCG(13, 13))
	for i := range 20000 {
		tags := make([]string, rng.IntN(7))
		for j := range tags {
			tags[j] = vocab[rng.IntN(len(vocab))]
		}
		ref := refDecode(tags)
		d := DecodeTags(tags)
		if ref.panicked {
			if !slices.ContainsFunc(d.Hazards, func(h TagHazard) bool { return strings.Contains(h.Effect, "panics") }) {
				t.Fatalf("#%d %q: go-micro panics, no hazard: %+v", i, tags, d.Hazards)
			}
			continue
		}
		var names []string
		for _, ep := range d.Endpoints {
			names = append(names, ep.Name)
		}
		// A JSON null endpoint: go-micro lists a nil endpoint, microctl
		// reports the tag as malformed instead.
		if n := strings.Count(strings.Join(ref.eps, ","), "<nil>"); n > 0 {
			ref.eps = slices.DeleteFunc(ref.eps, func(s string) bool { return s == "<nil>" })
			if !slices.ContainsFunc(d.Malformed, func(m MalformedTag) bool { return strings.Contains(m.Reason, "JSON null") }) {
				t.Fatalf("#%d %q: a null endpoint not reported: %+v", i, tags, d.Malformed)
			}
		}
		md := d.Metadata
		if md == nil {
			md = map[string]string{}
		}
		if !reflect.DeepEqual(md, ref.md) || !slices.Equal(names, ref.eps) || d.Version != ref.version || d.HasVersion != ref.hasVer {
			t.Fatalf("#%d %q:\n microctl md=%v eps=%v version=%q/%v\n go-micro md=%v eps=%v version=%q/%v",
				i, tags, md, names, d.Version, d.HasVersion, ref.md, ref.eps, ref.version, ref.hasVer)
		}
	}
}
