package cmd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/microctl/microctl/internal/cmdutil"
)

// fakeConsul answers the catalog reads of registry ls and health with one
// instance whose ID carries an escape sequence and whose tags hold a
// malformed go-micro tag, so that reading it yields a warning that quotes
// the ID.
func fakeConsul(t *testing.T, id string) string {
	t.Helper()
	answers := map[string]any{
		"/v1/health/state/any": []any{},
		"/v1/catalog/nodes":    []map[string]any{{"Node": "n1", "Address": "127.0.0.1"}},
		"/v1/catalog/node-services/n1": map[string]any{
			"Node":     map[string]any{"Node": "n1", "Address": "127.0.0.1"},
			"Services": []map[string]any{{"ID": id, "Service": "evil", "Tags": []string{"v-zz"}, "Port": 8080, "Address": "127.0.0.1"}},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Consul-Index", "5")
		w.Header().Set("Content-Type", "application/json")
		a, ok := answers[r.URL.Path]
		if !ok {
			t.Logf("fake Consul: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestWarningsAreSanitised: an escape sequence in a Consul instance ID
// reaches stderr as a visible escape in the warning, never as a raw ESC.
func TestWarningsAreSanitised(t *testing.T) {
	addr := fakeConsul(t, "evil-\x1b]0;pwned\x07\x1b[2J-1")
	t.Setenv("CONSUL_HTTP_ADDR", addr)
	t.Setenv(cmdutil.TimeoutEnv, "")
	for _, args := range [][]string{{"registry", "ls"}, {"health"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, _, stderr := run(t, context.Background(), args...)
			if !strings.Contains(stderr, `warning: instance evil-\x1b]0;pwned\x07\x1b[2J-1 of`) {
				t.Errorf("stderr lacks the escaped warning:\n%q", stderr)
			}
			if strings.ContainsAny(stderr, "\x1b\x07") {
				t.Errorf("a raw control character reached stderr: %q", stderr)
			}
		})
	}
}
