package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadCompose feeds arbitrary bytes through the loader and the
// converter: whatever the file holds, they return a stack or an error,
// never panic, and every error is one line. Under -fuzz it is slow (a few
// execs per second at best): compose-go compiles and runs its JSON schema,
// which the coverage instrumentation makes very expensive.
func FuzzLoadCompose(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/convert/*.yml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("services:\n  a:\n    image: x\n    ports: [\"80:80\", \"80:80\"]\n"))
	f.Add([]byte("services:\n  a:\n    image: ${X:?need X}\n"))
	f.Add([]byte("services: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "compose.yml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		proj, _, err := LoadCompose(context.Background(), LoadOptions{Files: []string{p}, Stack: "fuzz", Env: []string{}})
		if err != nil {
			if msg := err.Error(); len(msg) == 0 || containsNewline(msg) {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		if st, err := Convert(proj, ConvertOptions{}); err == nil {
			if _, err := Order(st.Services); err != nil {
				t.Fatalf("Convert accepted a stack that Order refuses: %v", err)
			}
		}
	})
}

func containsNewline(s string) bool {
	for _, r := range s {
		if r == '\n' {
			return true
		}
	}
	return false
}
