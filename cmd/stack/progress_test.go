package stack

import (
	"bytes"
	"strings"
	"testing"
	"time"

	stk "github.com/microctl/microctl/pkg/stack"
)

func TestProgressPlainPrintsChangesOnly(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressTo(&buf, false, 0)
	a := stk.State{Service: "s_api", Phase: stk.PhaseStarting, Running: 0, Desired: 2}
	b := stk.State{Service: "s_db", Phase: stk.PhaseWaiting}
	p.States([]stk.State{a, b})
	p.States([]stk.State{a, b})
	a.Running = 1
	p.States([]stk.State{a, b})
	a.Phase, a.Running, a.VerifyLeft = stk.PhaseVerifying, 2, 3*time.Second
	p.States([]stk.State{a, b})
	a.VerifyLeft = 2 * time.Second // a countdown is not a change in a log
	p.States([]stk.State{a, b})
	p.Event("created service s_db")
	want := `s_api  0/2        starting
s_db   -          waiting
s_api  1/2        starting
s_api  2/2        verifying
created service s_db
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestProgressLiveRedraws(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressTo(&buf, true, 40)
	p.States([]stk.State{{Service: "s_api", Phase: stk.PhaseVerifying, Running: 1, Desired: 1, VerifyLeft: 2 * time.Second}})
	p.States([]stk.State{{Service: "s_api", Phase: stk.PhaseFailed, Running: 0, Desired: 1,
		Message: "tasks keep failing (3 failed): task abc failed: task: non-zero exit (1)"}})
	out := buf.String()
	if !strings.Contains(out, "verifying (2s)") {
		t.Errorf("no countdown in %q", out)
	}
	if !strings.Contains(out, "\x1b[1A") {
		t.Errorf("second draw does not move up: %q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "\x1b[1A"), "\x1b[2K")
		if n := len([]rune(line)); n > 39 {
			t.Errorf("line of %d runes is wider than the terminal: %q", n, line)
		}
	}
}

// TestProgressSanitisesWhatTheEngineSays: a task error or an event quoting
// the engine or Consul reaches the terminal with its control characters
// made visible, on a terminal and in a log alike.
func TestProgressSanitisesWhatTheEngineSays(t *testing.T) {
	for _, live := range []bool{false, true} {
		var buf bytes.Buffer
		p := newProgressTo(&buf, live, 200)
		p.States([]stk.State{{Service: "s_api", Phase: stk.PhaseFailed, Running: 0, Desired: 1,
			Message: "task x failed: \x1b]0;owned\x07boom"}})
		p.Event("removed service s_api\x1b[2J")
		out := buf.String()
		if strings.Contains(out, "\x1b]") || strings.Contains(out, "\x07") || strings.Contains(out, "\x1b[2J") {
			t.Errorf("live=%v: raw control sequence reached the output: %q", live, out)
		}
		if !strings.Contains(out, "boom") || !strings.Contains(out, "removed service s_api") {
			t.Errorf("live=%v: the text itself is gone: %q", live, out)
		}
	}
}
