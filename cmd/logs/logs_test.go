package logs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/logs"
)

func TestFlags(t *testing.T) {
	o, err := cmdtest.Parse(t, NewCmdLogs, "demo", "other_svc", "-f", "--since", "10m", "-n", "5", "--grep", "err|panic", "-t", "-o", "json")
	if err != nil || strings.Join(o.Targets, ",") != "demo,other_svc" || !o.Follow || o.Since != "10m" || o.Tail != 5 ||
		o.Grep != "err|panic" || !o.Timestamps || !o.Output.JSON() {
		t.Fatalf("err %v, options %+v", err, o)
	}
	if o, _ := cmdtest.Parse(t, NewCmdLogs, "demo"); o.Tail != -1 {
		t.Errorf("default --tail %d, want -1 (all)", o.Tail)
	}
	// No target is cobra's argument error; the others are ours.
	if _, err := cmdtest.Parse(t, NewCmdLogs); err == nil {
		t.Error("no target: accepted")
	}
	for _, args := range [][]string{{"demo", "--grep", "("}, {"demo", "--tail", "-5"}} {
		var ue *cmdutil.UsageError
		if _, err := cmdtest.Parse(t, NewCmdLogs, args...); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestWriteLine: the prefix, the instance, timestamps, and colour only
// when asked (the caller asks only on a terminal).
func TestWriteLine(t *testing.T) {
	l := logs.Line{Time: time.Date(2026, 11, 27, 15, 0, 0, 5, time.UTC), Service: "demo_greeter", Slot: 2, Node: "vm", Text: "hello"}
	for _, tc := range []struct {
		name       string
		line       logs.Line
		ts, colour bool
		want       string
	}{
		{"plain", l, false, false, "demo_greeter.2@vm | hello\n"},
		{"timestamps", l, true, false, "2026-11-27T15:00:00.000000005Z demo_greeter.2@vm | hello\n"},
		{"instance", func() logs.Line { x := l; x.Instance = "greeter-1"; return x }(), false, false, "demo_greeter.2@vm greeter-1 | hello\n"},
		{"global", func() logs.Line { x := l; x.Slot = 0; return x }(), false, false, "demo_greeter@vm | hello\n"},
		{"colour", l, false, true, "\x1b[36mdemo_greeter.2@vm\x1b[0m | hello\n"},
		{"truncated", func() logs.Line { x := l; x.Truncated = true; return x }(), false, false, "demo_greeter.2@vm | hello [truncated]\n"},
	} {
		var b bytes.Buffer
		if err := writeLine(&b, tc.line, tc.ts, tc.colour, map[string]string{}); err != nil || b.String() != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, b.String(), tc.want)
		}
	}
}
