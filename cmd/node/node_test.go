package node

import (
	"errors"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
)

func TestFlags(t *testing.T) {
	o, err := cmdtest.Parse(t, NewCmdDrain, "worker-2", "--timeout", "90s", "-o", "json")
	if err != nil || o.Node != "worker-2" || o.Timeout != 90*time.Second || !o.Output.JSON() {
		t.Errorf("drain: err %v, options %+v", err, o)
	}
	if o, _ := cmdtest.Parse(t, NewCmdDrain, "w"); o.Timeout != 5*time.Minute {
		t.Errorf("default --timeout %s", o.Timeout)
	}
	var ue *cmdutil.UsageError
	if _, err := cmdtest.Parse(t, NewCmdDrain, "w", "--timeout", "0s"); !errors.As(err, &ue) {
		t.Errorf("--timeout 0: %v", err)
	}
	if _, err := cmdtest.Parse(t, NewCmdDrain); err == nil {
		t.Error("drain without a node accepted")
	}
	o, err = cmdtest.Parse(t, NewCmdActivate, "worker-2", "--rebalance")
	if err != nil || o.Node != "worker-2" || !o.Rebalance {
		t.Errorf("activate: err %v, options %+v", err, o)
	}
	if _, err := cmdtest.Parse(t, NewCmdLs, "extra"); err == nil {
		t.Error("ls with an argument accepted")
	}
}

func TestTasksColumn(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]int
		want string
	}{
		{nil, "-"},
		{map[string]int{"demo": 3, "": 1, "api": 2}, "(no stack):1 api:2 demo:3"},
	} {
		if got := tasks(tc.in); got != tc.want {
			t.Errorf("tasks(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
