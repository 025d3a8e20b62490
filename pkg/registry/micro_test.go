package registry

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Vectors encoded by go-micro itself (FACTS.md).
const (
	vecVersionLatest = "v-789cca492c492d2e01040000ffff08cc028e"
	vecProtocolMucp  = "t-789caa562a28ca2fc94fcecf51b252ca2d4d2e50aa05040000ffff46a906e2"
)

func TestEncodeMatchesGoMicro(t *testing.T) {
	if got := EncodeVersion("latest"); got != vecVersionLatest {
		t.Errorf("EncodeVersion(latest) = %s, want %s", got, vecVersionLatest)
	}
	if got := EncodeMetadata(map[string]string{"protocol": "mucp"}); len(got) != 1 || got[0] != vecProtocolMucp {
		t.Errorf("EncodeMetadata = %v, want [%s]", got, vecProtocolMucp)
	}
}

func TestDecodeTags(t *testing.T) {
	ep := Endpoint{Name: "Greeter.Hello", Request: &Value{Name: "Request", Type: "Request"},
		Response: &Value{Name: "Response", Type: "Response"}, Metadata: map[string]string{"method": "GET"}}
	tests := []struct {
		name string
		tags []string
		want Decoded
	}{
		{"go-micro vectors", []string{vecVersionLatest, vecProtocolMucp},
			Decoded{Version: "latest", Metadata: map[string]string{"protocol": "mucp"}}},
		{"legacy forms", []string{`t={"a":"b"}`, "v=1.2.0", `e={"name":"X.Y"}`},
			Decoded{Version: "1.2.0", Metadata: map[string]string{"a": "b"}, Endpoints: []Endpoint{{Name: "X.Y"}}}},
		{"endpoint round trip", EncodeEndpoints([]Endpoint{ep}), Decoded{Endpoints: []Endpoint{ep}}},
		{"other tags kept", []string{"primary", "traefik.enable=true", "t", "x-1"},
			Decoded{Other: []string{"primary", "traefik.enable=true", "t", "x-1"}}},
		{"not hex", []string{"v-zz"}, Decoded{Malformed: []MalformedTag{{Tag: "v-zz"}}}},
		{"not zlib", []string{"t-abcd"}, Decoded{Malformed: []MalformedTag{{Tag: "t-abcd"}}}},
		{"metadata not an object", []string{"t=[1,2]"}, Decoded{Malformed: []MalformedTag{{Tag: "t=[1,2]"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecodeTags(tt.tags)
			for i := range got.Malformed {
				if got.Malformed[i].Reason == "" {
					t.Errorf("malformed tag %q has no reason", got.Malformed[i].Tag)
				}
				got.Malformed[i].Reason = "" // reasons are prose; the tag is what matters
			}
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
		if len(d.Other)+len(d.Malformed) > 1 {
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
		if !reflect.DeepEqual(d.Metadata, want) || d.Version != ver || len(d.Malformed)+len(d.Other) != 0 {
			t.Fatalf("round trip of %q=%q gave %+v", k, v, d)
		}
	})
}
