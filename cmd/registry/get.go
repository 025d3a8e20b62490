package registry

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// GetOptions are the inputs of `microctl registry get`.
type GetOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)

	Service  string
	Defaults health.Defaults
	Output   cmdutil.Format
}

// NewCmdGet builds `registry get`.
func NewCmdGet(f *cmdutil.Factory, runF func(context.Context, *GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "get SERVICE",
		Short: "Show each instance of a service: address, version, metadata, endpoints, checks",
		Long: `Show each instance of a service: its ID, the address and port clients dial,
its node, the version, metadata and endpoints go-micro encodes in its tags
(decoded), its Meta, and every check that decides its health, its node's
included.

TTL and interval come from the instance's Meta (micro_register_ttl,
micro_register_interval) or from --ttl and --interval; Consul itself returns
neither, so they show as unknown otherwise.

An unknown service exits 1 and names the closest one.`,
		Example: `  microctl registry get go.micro.srv.greeter
  microctl registry get go.micro.srv.greeter -o json | jq '.instances[].decoded.endpoints'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return getRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().Var(health.DurationValue{D: &opts.Defaults.TTL}, "ttl", "TTL to assume for instances whose Meta has none (seconds or a duration)")
	cmd.Flags().Var(health.DurationValue{D: &opts.Defaults.Interval}, "interval", "heartbeat interval to assume for instances whose Meta has none")
	return cmd
}

func getRun(ctx context.Context, opts *GetOptions) error {
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	raw, nodes, filtered, err := c.ServiceInstances(ctx, opts.Service)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		names, err := c.ServiceNames(ctx)
		if err != nil {
			return err
		}
		return &health.UnknownServiceError{Name: opts.Service, Suggestion: health.Suggest(opts.Service, names), Filtered: filtered.Any()}
	}
	nodeChecks := map[string][]registry.Check{}
	nodeAddr := map[string]string{}
	for _, n := range nodes {
		nodeChecks[n.Name], nodeAddr[n.Name] = n.Checks, n.Address
	}
	ins := make([]health.Instance, 0, len(raw))
	for _, r := range raw {
		ins = append(ins, health.NewInstance(r, nodeChecks[r.Node], opts.Defaults))
	}
	warn(opts.IO, health.InstanceWarnings(ins))
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, struct {
			Service   string            `json:"service"`
			Instances []health.Instance `json:"instances"`
		}{opts.Service, ins})
	}
	for i, in := range ins {
		if i > 0 {
			fmt.Fprintln(opts.IO.Out)
		}
		renderInstance(opts.IO.Out, in, nodeAddr[in.Node])
	}
	return nil
}

func renderInstance(w io.Writer, in health.Instance, nodeAddr string) {
	fmt.Fprintln(w, cmdutil.Sanitize(in.ID))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, cmdutil.Sanitize(textutil.OneLine(v))) }
	kv("status", in.Status)
	kv("address", hostPort(in.Address, in.Port))
	kv("node", fmt.Sprintf("%s (%s)", in.Node, nodeAddr))
	if in.Decoded.HasVersion && in.Version == "" {
		kv("version", `"" (an empty version tag; "-" means none)`)
	} else {
		kv("version", orDash(in.Version))
	}
	kv("ttl", timing(in.TTLText, in.TTLSource))
	kv("interval", timing(in.IntervalText, in.IntervalSource))
	kv("metadata", orDash(pairs(in.Decoded.Metadata)))
	kv("meta", orDash(pairs(in.Meta)))
	if len(in.Decoded.Endpoints) == 0 {
		kv("endpoints", "-")
	}
	for i, ep := range in.Decoded.Endpoints {
		k := ""
		if i == 0 {
			k = "endpoints"
		}
		kv(k, endpoint(ep))
	}
	kv("tags", orDash(strings.Join(in.Decoded.Other, " ")))
	for _, m := range in.Decoded.Malformed {
		kv("malformed", fmt.Sprintf("%s (%s)", m.Tag, m.Reason))
	}
	for _, h := range in.Decoded.Hazards {
		kv("breaks", fmt.Sprintf("%s: %s", h.Tag, h.Effect))
	}

	_ = tw.Flush()
	fmt.Fprintln(w, "  checks")
	t := cmdutil.NewTable(w)
	for _, c := range in.Checks {
		id := c.CheckID
		if c.Scope == "node" {
			id += " (node)"
		}
		t.Row("   ", c.Status, c.Kind, id, orDash(truncate(c.Output, 80)))
	}
	if len(in.Checks) == 0 {
		t.Row("   ", "none: Consul reports the instance passing whatever happens to it")
	}
	_ = t.Flush()
}

func timing(text *string, src health.Origin) string {
	if text == nil {
		return "unknown (not in Meta; Consul does not return it; --ttl/--interval to assume one)"
	}
	return fmt.Sprintf("%s (%s)", *text, src)
}

func pairs(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

func endpoint(ep registry.Endpoint) string {
	s := ep.Name
	if ep.Request != nil || ep.Response != nil {
		s += fmt.Sprintf("(%s) %s", valueName(ep.Request), valueName(ep.Response))
	}
	if len(ep.Metadata) > 0 {
		s += " {" + pairs(ep.Metadata) + "}"
	}
	return s
}

func valueName(v *registry.Value) string {
	if v == nil {
		return ""
	}
	return cmp.Or(v.Name, v.Type)
}

func hostPort(addr string, port int) string {
	if port == 0 {
		return orDash(addr)
	}
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

func truncate(s string, n int) string {
	s = textutil.OneLine(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
