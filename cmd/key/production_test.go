package key

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
)

// TestProductionBadInput: the issue-16 commands' impossible inputs are
// usage errors found before Consul or Docker is touched.
func TestProductionBadInput(t *testing.T) {
	t.Setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	dir := t.TempDir()
	hexKEK := filepath.Join(dir, "hex")
	os.WriteFile(hexKEK, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("q6u3Z1B9Wk0m3+zJ5kHw3mQvT6c5dT1y8ZbJ2nV0aXE=\n"), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"show", "--kek-file", hexKEK}, "not a key-encryption key: want 32 random bytes, base64 encoded, as `openssl rand -base64 32`"},
		{[]string{"show", "--kek-file", short}, "not a key-encryption key"},
		{[]string{"show", "--kek-file", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"init", "--legacy", "--kek-file", good}, "legacy HS256 rings cannot be sealed"},
		{[]string{"seal"}, "key seal needs --kek-file"},
		{[]string{"rekey", "--kek-file", good}, "--new-kek-file"},
		{[]string{"rekey", "--kek-file", good, "--new-kek-file", hexKEK}, "--new-kek-file " + hexKEK + ": not a key-encryption key"},
		{[]string{"serve", "--listen", "nocolon"}, "--listen"},
		{[]string{"serve", "--max-age", "1s"}, "--max-age must be at least 2s"},
		{[]string{"rotate", "--every", "1s"}, "--every 1s: at least 2s"},
		{[]string{"rotate", "--every", "30x"}, "invalid duration"},
		{[]string{"rotate", "--every", "1d", "--dry-run"}, "does not mix"},
		{[]string{"schedule"}, "give --every DURATION"},
		{[]string{"schedule", "--every", "30d", "--remove"}, "give --every DURATION"},
		{[]string{"log", "--since", "yesterday"}, "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := cmdtest.Exec(t, NewCmdKey, tt.args...)
			var ue *cmdutil.UsageError
			if !errors.As(err, &ue) && !strings.Contains(err.Error(), "invalid argument") {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %q, want one line containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "abababab") {
				t.Fatalf("the error shows the file's content: %v", err)
			}
		})
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "0d": 0} {
		if got, err := parseDays(in); err != nil || got != want {
			t.Errorf("parseDays(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"d", "-1d", "30", "1dd", "x"} {
		if _, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) accepted", in)
		}
	}
	d := days(30 * 24 * time.Hour)
	if d.String() != "30d" {
		t.Errorf("String = %s", d.String())
	}
}
