package key

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/spf13/pflag"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/keysched"
	"github.com/microctl/microctl/pkg/registry"
)

func addRotatorFlags(fl *pflag.FlagSet, opts *RotateOptions) {
	fl.StringVar(&opts.ConsulFile, "consul-file", "", `with --every: a JSON file {"address": ..., "token": ...} (a Docker secret) for the Consul connection`)
	_ = fl.MarkHidden("consul-file")
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
	consul := opts.Consul
	if opts.ConsulFile != "" {
		consul = func() (*registry.Client, error) { return consulFromFile(opts.ConsulFile) }
	}
	s, err := opts.Ring.store(consul)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		opts.IO.Infof("%s rotator %s: %s", time.Now().UTC().Format(time.RFC3339), s.Path(), fmt.Sprintf(format, a...))
	}
	return s.RunRotator(ctx, keys.RotatorOptions{Every: opts.Every, Logf: logf,
		Rotate: keys.RotateOptions{Grace: opts.Grace, Force: opts.Force, Alg: alg, Bits: opts.Bits}})
}

// consulFromFile builds the Consul client from the secret `key schedule`
// mounts: the address and token never appear in the environment.
func consulFromFile(path string) (*registry.Client, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--consul-file: %w", err)
	}
	var cs keysched.ConsulSecret
	if err := json.Unmarshal(b, &cs); err != nil || cs.Address == "" {
		return nil, fmt.Errorf("--consul-file %s: not a JSON object with an address", path)
	}
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = cs.Address, cs.Token, ""
	return registry.NewClient(cfg)
}
