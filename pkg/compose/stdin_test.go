package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFromStdinContent: "-" loads what the caller read (its IOStreams),
// merged with a file like any other; a broken one is reported as "-", and
// the stand-in file does not outlive the load.
func TestLoadFromStdinContent(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(base, []byte("services:\n  api:\n    image: microctl/greeter:dev\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "microctl-stdin-*"))

	p, _, err := LoadCompose(context.Background(), LoadOptions{Files: []string{base, "-"}, Stack: "stdintest",
		Stdin: []byte("services:\n  api:\n    environment:\n      FROM: stdin\n")})
	if err != nil {
		t.Fatal(err)
	}
	api := p.Services["api"]
	if api.Image != "microctl/greeter:dev" || api.Environment["FROM"] == nil || *api.Environment["FROM"] != "stdin" {
		t.Errorf("api = image %q environment %v, want the file's image and stdin's FROM", api.Image, api.Environment)
	}

	_, _, err = LoadCompose(context.Background(), LoadOptions{Files: []string{"-"}, Stack: "stdintest",
		Stdin: []byte("services:\n  api:\n   image: [\n")})
	var ce *ComposeError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "-:") || strings.Contains(err.Error(), "microctl-stdin-") {
		t.Errorf("err = %v, want a ComposeError naming \"-\"", err)
	}

	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "microctl-stdin-*"))
	if len(after) > len(before) {
		t.Errorf("stand-in files left behind: %v", after)
	}
}
