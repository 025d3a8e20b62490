package key

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/keysched"
	"github.com/microctl/microctl/pkg/registry"
)

// ScheduleOptions are the inputs of `microctl key schedule`.
type ScheduleOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Docker func() (client.APIClient, error)
	Ring   *RingFlags
	// ConsulConfig is the connection microctl itself uses; its token goes
	// into the rotator's secret.
	ConsulConfig func() (addr, token string, err error)

	Output        cmdutil.Format
	Every         time.Duration
	Stack         string
	Image         string
	Replicas      uint64
	Network       string
	ServiceConsul string
	Remove        bool
	JWKSPort      uint32
	MaxAge        time.Duration
}

// NewCmdSchedule builds `key schedule`.
func NewCmdSchedule(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *ScheduleOptions) error) *cobra.Command {
	opts := &ScheduleOptions{IO: f.IOStreams, Consul: f.Consul, Docker: f.Docker, Ring: rf,
		ConsulConfig: func() (string, string, error) {
			cfg := f.ConsulFlags.Config()
			tok := cfg.Token
			if cfg.TokenFile != "" {
				b, err := os.ReadFile(cfg.TokenFile)
				if err != nil {
					return "", "", fmt.Errorf("Consul token file: %w", err)
				}
				tok = strings.TrimSpace(string(b))
			}
			return cfg.Address, tok, nil
		}}
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Run the key rotator as a Swarm service (key rotate --every), or remove it",
		Long: `Deploy the ring's rotator as a Swarm service <stack>_key-rotator: the static
microctl image (microctl/microctl:dev, from scripts/build-images.sh) running
microctl key rotate --every DURATION. The Consul address and token go into a
Docker secret mounted at /run/secrets/microctl-consul, never into the
service's environment or arguments; a sealed ring's KEK (--kek-file) into a
second secret. Two replicas by default: they elect one leader through a
Consul lock, so the ring rotates once per period whatever the number of
copies.

Run it again to change --every (the service is updated); --remove deletes
the service and its secrets. microctl doctor reports whether a rotator
runs, when it last rotated and when it will next.`,
		Example: `  microctl key schedule --every 30d --stack demo --network micro --service-consul-addr consul:8500
  microctl key schedule --remove --stack demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.Remove == cmd.Flags().Changed("every") {
				return cmdutil.Usagef("give --every DURATION to schedule the rotator, or --remove to delete it")
			}
			if !opts.Remove && opts.Every < keys.MinRotatorEvery {
				return cmdutil.Usagef("--every %s: at least %s", opts.Every, keys.MinRotatorEvery)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSchedule(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.Var((*days)(&opts.Every), "every", "rotate when the current key has signed this long (e.g. 30d)")
	fl.StringVar(&opts.Stack, "stack", keysched.DefaultStack, "stack the service belongs to")
	fl.StringVar(&opts.Image, "image", keysched.DefaultImage, "microctl image")
	fl.Uint64Var(&opts.Replicas, "replicas", keysched.DefaultReplicas, "copies (one leads)")
	fl.StringVar(&opts.Network, "network", "", "network to attach, the one Consul is reachable on (e.g. micro)")
	fl.StringVar(&opts.ServiceConsul, "service-consul-addr", "", "Consul address as the service sees it (default: the one microctl uses)")
	fl.BoolVar(&opts.Remove, "remove", false, "remove the rotator service (and the JWKS service) and their secrets")
	fl.Uint32Var(&opts.JWKSPort, "jwks-port", 0, "also run microctl key serve as <stack>_jwks, published on this host port")
	fl.DurationVar(&opts.MaxAge, "max-age", 0, "the JWKS service's --max-age (default: key serve's)")
	return cmd
}

func runSchedule(ctx context.Context, opts *ScheduleOptions) error {
	d, err := opts.Docker()
	if err != nil {
		return err
	}
	var res *keysched.Result
	if opts.Remove {
		res, err = keysched.Remove(ctx, d, opts.Stack)
	} else {
		// The ring must exist and accept the period before a service is
		// made that would only log errors.
		s, err := opts.Ring.store(opts.Consul)
		if err != nil {
			return err
		}
		ring, err := s.Ring(ctx)
		if err != nil {
			return err
		}
		if lim := keys.MaxAgeLimit(ring); opts.Every < lim {
			return &keys.EveryTooShortError{Every: opts.Every, Limit: lim, Period: ring.RotationPeriod.Duration()}
		}
		if opts.JWKSPort != 0 {
			ma := opts.MaxAge
			if ma == 0 {
				ma = keys.DefaultMaxAge
			}
			if lim := keys.MaxAgeLimit(ring); ma > lim {
				return &keys.MaxAgeError{MaxAge: ma, Limit: lim, Period: ring.RotationPeriod.Duration()}
			}
		}
		addr, tok, err := opts.ConsulConfig()
		if err != nil {
			return err
		}
		if opts.ServiceConsul != "" {
			addr = opts.ServiceConsul
		}
		var kek []byte
		if opts.Ring.KEKFile != "" {
			if _, err := opts.Ring.kek(); err != nil {
				return err
			}
			if kek, err = os.ReadFile(opts.Ring.KEKFile); err != nil {
				return err
			}
		}
		res, err = keysched.Schedule(ctx, d, keysched.Options{Stack: opts.Stack, Path: s.Path(), Every: opts.Every,
			Image: opts.Image, Replicas: opts.Replicas, Network: opts.Network,
			Consul: keysched.ConsulSecret{Address: addr, Token: tok}, KEK: kek, JWKSPort: opts.JWKSPort, MaxAge: opts.MaxAge})
		if err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if res.Warning != "" {
		opts.IO.Warnf("%s", res.Warning)
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, res)
	}
	switch res.Action {
	case "none":
		fmt.Fprintf(opts.IO.Out, "no rotator service %s\n", res.Service)
	default:
		fmt.Fprintf(opts.IO.Out, "%s service %s\n", res.Action, res.Service)
	}
	t := cmdutil.NewTable(opts.IO.Out)
	if len(res.Args) > 0 {
		t.Row("runs", "microctl "+strings.Join(res.Args, " "))
	}
	if res.JWKS != "" {
		t.Row("jwks", fmt.Sprintf("%s: microctl key serve on host port %d", res.JWKS, opts.JWKSPort))
	}
	for _, s := range res.Secrets {
		t.Row("new secret", s)
	}
	for _, s := range res.Removed {
		t.Row("removed secret", s)
	}
	return t.Flush()
}
