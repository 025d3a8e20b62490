package key

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
)

func addRotatorFlags(fl *pflag.FlagSet, opts *RotateOptions) {
	fl.Var((*days)(&opts.Every), "every", "run until stopped, rotating whenever the current key has signed this long (one leader cluster-wide; see microctl key schedule)")
}

// runRotator is `key rotate --every D`: it logs one line per action on
// stderr and exits 0 on Ctrl-C or SIGTERM.
func runRotator(ctx context.Context, opts *RotateOptions) error {
	if opts.Every < keys.MinRotatorEvery {
		return cmdutil.Usagef("--every %s: at least %s", opts.Every, keys.MinRotatorEvery)
	}
	if opts.Revoke || opts.DryRun {
		return cmdutil.Usagef("--every does not mix with --revoke or --dry-run")
	}
	alg, err := parseAlg(opts.Alg)
	if err != nil {
		return err
	}
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(opts.IO.ErrOut, "%s rotator %s: %s\n", time.Now().UTC().Format(time.RFC3339), s.Path(), fmt.Sprintf(format, a...))
	}
	return s.RunRotator(ctx, keys.RotatorOptions{Every: opts.Every, Logf: logf,
		Rotate: keys.RotateOptions{Grace: opts.Grace, Force: opts.Force, Alg: alg, Bits: opts.Bits}})
}
