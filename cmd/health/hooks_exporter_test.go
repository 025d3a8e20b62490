package health

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
)

func TestWatchHookFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		check func(*WatchOptions) bool
	}{
		{[]string{"--exec", "cat", "--on", "critical,flapping,deregistered"}, false, func(o *WatchOptions) bool {
			return o.Hooks.Exec == "cat" && slices.Equal(o.Hooks.On, []string{"critical", "flapping", "deregistered"}) &&
				o.Hooks.Timeout == 10*time.Second && o.Hooks.Concurrency == 4 && o.Hooks.Retries == 3
		}},
		{[]string{"--webhook", "http://127.0.0.1:9000/a", "--hook-timeout", "2s", "--webhook-retries", "0"}, false, func(o *WatchOptions) bool {
			return o.Hooks.Webhook == "http://127.0.0.1:9000/a" && o.Hooks.Timeout == 2*time.Second && o.Hooks.Retries == 0
		}},
		{[]string{"--exec", "cat", "--on", "bogus"}, true, nil},
		{[]string{"--on", "critical"}, true, nil}, // a filter without a hook
		{[]string{"--webhook", "ftp://x"}, true, nil},
		{[]string{"--webhook", "127.0.0.1:9000"}, true, nil},
		{[]string{"--exec", "cat", "--hook-concurrency", "0"}, true, nil},
		{[]string{"--exec", "cat", "--hook-timeout", "0s"}, true, nil},
	} {
		o, err := cmdtest.Parse(t, NewCmdWatch, tc.args...)
		var ue *cmdutil.UsageError
		switch {
		case tc.usage && !errors.As(err, &ue):
			t.Errorf("%v: err %v, want a usage error", tc.args, err)
		case !tc.usage && (err != nil || !tc.check(o)):
			t.Errorf("%v: err %v, options %+v", tc.args, err, o)
		}
	}
}

func TestExporterFlags(t *testing.T) {
	o, err := cmdtest.Parse(t, NewCmdExporter, "--listen", "127.0.0.1:9107", "greeter", "greeter", "--ttl", "15")
	if err != nil || o.Listen != "127.0.0.1:9107" || !slices.Equal(o.Services, []string{"greeter"}) || o.Defaults.TTL != 15*time.Second {
		t.Errorf("err %v, options %+v", err, o)
	}
	for _, args := range [][]string{{}, {"--listen", "9107"}, {"--listen", ":9107", "--wait", "11m"}, {"--listen", ":9107", "--flap-transitions", "1"}} {
		var ue *cmdutil.UsageError
		if _, err := cmdtest.Parse(t, NewCmdExporter, args...); !errors.As(err, &ue) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}
