package cmdutil

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
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
// key ring follower) is allowed its own wait on top.
//
// Some commands have a --timeout of their own (deploy, rollback, scale,
// doctor, bench, call, node drain): the whole operation's budget, or the
// time each instance gets. Cobra lets a command's own flag shadow a
// persistent one of the same name, so `microctl --timeout 2s call ...`
// sets call's flag wherever it is written. The rule, kept here and only
// here: a client request is bounded by the global bound (flag, else
// MICROCTL_TIMEOUT, else DefaultTimeout) and, when the running command has
// a --timeout of its own, by that too, whichever is shorter. No request
// outlasts the operation it serves, and a --timeout the user typed is
// never ignored.
type TimeoutFlag struct {
	fs    *pflag.FlagSet
	Value time.Duration
	own   *pflag.Flag // the running command's own --timeout (see Use)
}

// Register adds --timeout to fs (the root command's persistent flags).
func (t *TimeoutFlag) Register(fs *pflag.FlagSet) {
	t.fs = fs
	fs.DurationVar(&t.Value, "timeout", DefaultTimeout,
		"give up on a Consul or Docker request that gets no answer within this long; 0 waits forever (env "+TimeoutEnv+"); a command's own --timeout also caps its requests")
}

// Use records the command about to run (the root command's
// PersistentPreRun calls it before any client is built). When cmd has a
// --timeout of its own, its value caps every request as well.
func (t *TimeoutFlag) Use(cmd *cobra.Command) {
	t.own = nil
	f := cmd.Flags().Lookup("timeout")
	if f != nil && (t.fs == nil || f != t.fs.Lookup("timeout")) {
		t.own = f
	}
}

// Duration returns the bound in force for each request: the global bound
// (the flag when set, else MICROCTL_TIMEOUT, else DefaultTimeout; 0 means
// none), capped by the running command's own --timeout when it has one
// and it is positive. A malformed or negative global value is a usage
// error.
func (t *TimeoutFlag) Duration() (time.Duration, error) {
	d, err := t.global()
	if err != nil || t.own == nil {
		return d, err
	}
	own, perr := time.ParseDuration(t.own.Value.String())
	if perr == nil && own > 0 && (d == 0 || own < d) {
		d = own
	}
	return d, nil
}

func (t *TimeoutFlag) global() (time.Duration, error) {
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
