package registry

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Vectors encoded by go-micro itself (FACTS.md): go-micro's encode() is
// json.Marshal, zlib at the default level, hex.
const (
	vecVersionLatest = "v-789cca492c492d2e01040000ffff08cc028e"
	vecProtocolMucp  = "t-789caa562a28ca2fc94fcecf51b252ca2d4d2e50aa05040000ffff46a906e2"
	vecVersion100    = "v-789c32d433d03300040000ffff02ce00ee"
	vecVersionEmpty  = "v-789c010000ffff00000001"
	vecKV            = "t-789caa56ca56b2522a53aa05040000ffff0cf2029c"
	vecWithSpace     = "t-789caa562acf2cc950282e484c4e55b2524ab44dd24956aa05040000ffff57650732"
)

func TestEncodeMatchesGoMicro(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []string
		want string
	}{
		{"version latest", []string{EncodeVersion("latest")}, vecVersionLatest},
		{"version 1.0.0", []string{EncodeVersion("1.0.0")}, vecVersion100},
		{"empty version", []string{EncodeVersion("")}, vecVersionEmpty},
		{"protocol mucp", EncodeMetadata(map[string]string{"protocol": "mucp"}), vecProtocolMucp},
		{"k=v", EncodeMetadata(map[string]string{"k": "v"}), vecKV},
		{"space, = and comma", EncodeMetadata(map[string]string{"with space": "a=b,c"}), vecWithSpace},
	} {
		if len(tc.got) != 1 || tc.got[0] != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, tc.got, tc.want)
		}
	}
}

// TestEncodedJSONIsGoMicros checks the JSON inside the tags byte for byte:
// go-micro marshals with encoding/json, which escapes <, > and & as
// \u003c, \u003e and \u0026 and keeps non-ASCII as UTF-8; and a
// registry.Endpoint marshals as name/request/response/metadata with nested
// values.
func TestEncodedJSONIsGoMicros(t *testing.T) {
	inner := func(tag string) string {
		b, err := decompress(tag[2:])
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for md, want := range map[string]string{
		"<a&b>":     `{"html":"\u003ca\u0026b\u003e"}`,
		"grüße, 東京": `{"html":"grüße, 東京"}`,
	} {
		if got := inner(EncodeMetadata(map[string]string{"html": md})[0]); got != want {
			t.Errorf("metadata %q: %s, want %s", md, got, want)
		}
	}
	ep := Endpoint{Name: "Greeter.Hello",
		Request: &Value{Name: "Request", Type: "Request", Values: []*Value{{Name: "name", Type: "string"},
			{Name: "address", Type: "Address", Values: []*Value{{Name: "city", Type: "string"}}}}},
		Response: &Value{Name: "Response", Type: "Response", Values: []*Value{{Name: "msg", Type: "string"}}},
		Metadata: map[string]string{"stream": "false"}}
	want := `{"name":"Greeter.Hello","request":{"name":"Request","type":"Request","values":[{"name":"name","type":"string","values":null},` +
		`{"name":"address","type":"Address","values":[{"name":"city","type":"string","values":null}]}]},` +
		`"response":{"name":"Response","type":"Response","values":[{"name":"msg","type":"string","values":null}]},"metadata":{"stream":"false"}}`
	tag := EncodeEndpoints([]Endpoint{ep})[0]
	if got := inner(tag); got != want {
		t.Errorf("endpoint JSON\n got %s\nwant %s", got, want)
	}
	if d := DecodeTags([]string{tag}); len(d.Endpoints) != 1 || !reflect.DeepEqual(d.Endpoints[0], ep) {
		t.Errorf("nested endpoint round trip: %+v", d.Endpoints)
	}
	for _, v := range []string{"", "latest", "1.0.0", "2019-10-01+build.7", "v2 beta"} {
		d := DecodeTags([]string{EncodeVersion(v)})
		if d.Version != v || !d.HasVersion {
			t.Errorf("version %q decodes to %q (has %v)", v, d.Version, d.HasVersion)
		}
	}
}

func TestDecodeTags(t *testing.T) {
	ep := Endpoint{Name: "Greeter.Hello", Request: &Value{Name: "Request", Type: "Request"},
		Response: &Value{Name: "Response", Type: "Response"}, Metadata: map[string]string{"method": "GET"}}
	ep2 := Endpoint{Name: "Greeter.Call"}
	epPlain := `e={"name":"Greeter.Hello","request":{"name":"Request","type":"Request","values":null},"response":{"name":"Response","type":"Response","values":null},"metadata":{"method":"GET"}}`
	epHex := EncodeEndpoints([]Endpoint{ep})[0]
	ep2Hex := EncodeEndpoints([]Endpoint{ep2})[0]
	tests := []struct {
		name string
		tags []string
		want Decoded
		// hazard: the tag go-micro breaks on ("" for none)
		hazard string
	}{
		{"go-micro vectors", []string{vecVersionLatest, vecProtocolMucp},
			Decoded{Version: "latest", HasVersion: true, Metadata: map[string]string{"protocol": "mucp"}}, ""},
		{"legacy forms", []string{`t={"a":"b"}`, "v=1.2.0", `e={"name":"X.Y"}`},
			Decoded{Version: "1.2.0", HasVersion: true, Metadata: map[string]string{"a": "b"}, Endpoints: []Endpoint{{Name: "X.Y"}}}, ""},
		{"endpoint round trip", EncodeEndpoints([]Endpoint{ep}), Decoded{Endpoints: []Endpoint{ep}}, ""},
		{"2016 encoder: every endpoint twice, e= first", []string{epPlain, epHex},
			Decoded{Endpoints: []Endpoint{ep}, Skipped: []MalformedTag{{Tag: epHex}}}, ""},
		{"2016 encoder: e- first", []string{epHex, epPlain, ep2Hex},
			Decoded{Endpoints: []Endpoint{ep, ep2}, Skipped: []MalformedTag{{Tag: epPlain}}}, ""},
		{"metadata: first form wins", []string{vecKV, `t={"a":"b"}`, vecProtocolMucp},
			Decoded{Metadata: map[string]string{"k": "v", "protocol": "mucp"}, Skipped: []MalformedTag{{Tag: `t={"a":"b"}`}}}, ""},
		{"first version wins", []string{vecVersion100, vecVersionLatest, "v=9"},
			Decoded{Version: "1.0.0", HasVersion: true, Skipped: []MalformedTag{{Tag: vecVersionLatest}, {Tag: "v=9"}}}, ""},
		{"empty version is not no version", []string{vecVersionEmpty}, Decoded{HasVersion: true}, ""},
		{"no version", []string{vecKV}, Decoded{Metadata: map[string]string{"k": "v"}}, ""},
		{"undecodable first version reads as empty", []string{"v-zz", vecVersion100},
			Decoded{HasVersion: true, Malformed: []MalformedTag{{Tag: "v-zz"}}, Skipped: []MalformedTag{{Tag: vecVersion100}}}, ""},
		{"plain t tag ahead drops all metadata", []string{"traefik.enable=true", vecKV, vecProtocolMucp, vecVersion100},
			Decoded{Version: "1.0.0", HasVersion: true, Other: []string{"traefik.enable=true"}}, "traefik.enable=true"},
		{"plain t tag after go-micro's is harmless", []string{vecKV, "traefik.enable=true"},
			Decoded{Metadata: map[string]string{"k": "v"}, Other: []string{"traefik.enable=true"}}, ""},
		{"plain e tag ahead drops all endpoints", []string{"edge", epHex, vecKV},
			Decoded{Metadata: map[string]string{"k": "v"}, Other: []string{"edge"}}, "edge"},
		{"one-character e panics go-micro", []string{"e", epHex},
			Decoded{Endpoints: []Endpoint{ep}, Other: []string{"e"}}, "e"},
		{"other tags kept", []string{"primary", "x-1", "v", "vip"},
			Decoded{Other: []string{"primary", "x-1", "v", "vip"}}, ""},
		{"not hex", []string{"t-zz"}, Decoded{Malformed: []MalformedTag{{Tag: "t-zz"}}}, ""},
		{"not zlib", []string{"t-abcd"}, Decoded{Malformed: []MalformedTag{{Tag: "t-abcd"}}}, ""},
		{"metadata not an object", []string{"t=[1,2]"}, Decoded{Malformed: []MalformedTag{{Tag: "t=[1,2]"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecodeTags(tt.tags)
			for _, list := range [][]MalformedTag{got.Malformed, got.Skipped} {
				for i := range list {
					if list[i].Reason == "" {
						t.Errorf("tag %q has no reason", list[i].Tag)
					}
					list[i].Reason = "" // reasons are prose; the tag is what matters
				}
			}
			switch {
			case tt.hazard == "" && len(got.Hazards) > 0:
				t.Errorf("unexpected hazards %+v", got.Hazards)
			case tt.hazard != "" && (len(got.Hazards) != 1 || got.Hazards[0].Tag != tt.hazard || !strings.Contains(got.Hazards[0].Effect, "go-micro")):
				t.Errorf("hazards %+v, want one for %q", got.Hazards, tt.hazard)
			}
			got.Hazards = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeTags(%q)\n got %+v\nwant %+v", tt.tags, got, tt.want)
			}
		})
	}
}

func TestDecompressBoundsZlibBomb(t *testing.T) {
	bomb := "v-" + compress([]byte(strings.Repeat("a", maxDecoded+10)))
	d := DecodeTags([]string{bomb})
	if len(d.Malformed) != 1 || !strings.Contains(d.Malformed[0].Reason, "inflates beyond") {
		t.Fatalf("zlib bomb not refused: %+v", d.Malformed)
	}
}

func FuzzDecodeTags(f *testing.F) {
	f.Add(vecVersionLatest)
	f.Add(vecProtocolMucp)
	f.Add(`t={"a":"b"}`)
	f.Add("e-" + compress([]byte(`{"name":"x","request":{"values":[{"values":[]}]}}`)))
	f.Fuzz(func(t *testing.T, tag string) {
		d := DecodeTags([]string{tag}) // must not panic on anything
		if len(d.Other)+len(d.Malformed)+len(d.Skipped) > 1 {
			t.Fatalf("tag %q counted twice: %+v", tag, d)
		}
		if len(d.Other) == 1 && d.Other[0] != tag {
			t.Fatalf("other tag altered: %q -> %q", tag, d.Other[0])
		}
		if len(d.Malformed) == 1 && (d.Malformed[0].Tag != tag || d.Malformed[0].Reason == "") {
			t.Fatalf("malformed tag altered or unexplained: %+v", d.Malformed[0])
		}
	})
}

func FuzzMetadataRoundTrip(f *testing.F) {
	f.Add("protocol", "mucp")
	f.Add("", "")
	f.Add("k\"ey", "v\u00e9\n")
	f.Fuzz(func(t *testing.T, k, v string) {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			t.Skip("JSON replaces invalid UTF-8, as go-micro's encoding does")
		}
		want := map[string]string{k: v}
		ver := "v" + v
		d := DecodeTags(append(EncodeMetadata(want), EncodeVersion(ver)))
		if !reflect.DeepEqual(d.Metadata, want) || d.Version != ver || !d.HasVersion || len(d.Malformed)+len(d.Other)+len(d.Skipped)+len(d.Hazards) != 0 {
			t.Fatalf("round trip of %q=%q gave %+v", k, v, d)
		}
	})
}
