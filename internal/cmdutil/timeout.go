package cmdutil

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
)

// DefaultTimeout bounds each Consul and Docker request when neither
// --timeout nor MICROCTL_TIMEOUT says otherwise.
const DefaultTimeout = 30 * time.Second

// TimeoutEnv is the environment variable behind --timeout.
const TimeoutEnv = "MICROCTL_TIMEOUT"

// TimeoutFlag is the global --timeout: how long any one request to Consul
// or to the Docker Engine may take before the command gives up on it with
// one line naming the address. A Consul blocking query (health watch, the
// key ring follower) is allowed its own wait on top. Commands that have a
// --timeout of their own (deploy, rollback, scale, doctor, bench) use it for
// their own purpose; their requests are still bounded by MICROCTL_TIMEOUT or
// the default.
type TimeoutFlag struct {
	fs    *pflag.FlagSet
	Value time.Duration
}

// Register adds --timeout to fs (the root command's persistent flags).
func (t *TimeoutFlag) Register(fs *pflag.FlagSet) {
	t.fs = fs
	fs.DurationVar(&t.Value, "timeout", DefaultTimeout,
		"give up on a Consul or Docker request that gets no answer within this long; 0 waits forever (env "+TimeoutEnv+")")
}

// Duration returns the bound in force: the flag when set, else
// MICROCTL_TIMEOUT, else DefaultTimeout. A malformed or negative value is a
// usage error.
func (t *TimeoutFlag) Duration() (time.Duration, error) {
	if t.fs != nil && t.fs.Changed("timeout") {
		if t.Value < 0 {
			return 0, Usagef("--timeout %s is negative", t.Value)
		}
		return t.Value, nil
	}
	if v, ok := os.LookupEnv(TimeoutEnv); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, Usagef("%s=%q is not a duration such as 30s or 2m", TimeoutEnv, v)
		}
		return d, nil
	}
	return DefaultTimeout, nil
}

func (t *TimeoutFlag) String() string { return fmt.Sprint(t.Value) }
