package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

// RegistryProbe checks what is registered: critical instances, instances
// left behind on nodes whose agent is gone, and lint errors. Findings are
// warnings, never failures: a critical instance during a rollout is normal,
// and `microctl health` is the gate for those who want one.
func RegistryProbe(src CatalogReader) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		names := []string{"registry.critical", "registry.stale", "registry.lint"}
		cat, err := src.Catalog(ctx)
		if err != nil {
			return doctor.Skipped("cannot read the catalog: "+err.Error(), names...)
		}
		// Seeing nothing is not "none critical": a token that may not read
		// the nodes or services gets an empty catalog and a flag saying so.
		if cat.Filtered.Any() {
			addr := ""
			if c, ok := src.(*registry.Client); ok {
				addr = c.Addr
			}
			fe := registry.FilteredError(addr, cat.Filtered)
			var pe *registry.PermissionError
			_ = errors.As(fe, &pe)
			if len(cat.Instances) == 0 {
				return append([]doctor.Result{{Check: names[0], Status: doctor.Fail,
					Detail: "cannot see the registry: " + pe.Detail, Hint: pe.Hint()}},
					doctor.Skipped("the registry is hidden from this token", names[1:]...)...)
			}
			res := registryResults(cat, names)
			res[0] = doctor.Result{Check: names[0], Status: doctor.Warn,
				Detail: "part of the registry is hidden from this token (" + pe.Detail + "); of what it may read: " + res[0].Detail,
				Hint:   cmp.Or(res[0].Hint, pe.Hint())}
			return res
		}
		return registryResults(cat, names)
	}
}

func registryResults(cat *registry.Catalog, names []string) []doctor.Result {
	{
		ins := Build(cat, Options{})
		var critical, stale []string
		for _, in := range ins {
			if in.Status == registry.StatusCritical {
				critical = append(critical, in.Service+"/"+in.ID)
			}
			if in.AgentGone() {
				stale = append(stale, in.Service+"/"+in.ID)
			}
		}
		tot := Total(ins)
		res := []doctor.Result{{Check: names[0], Status: doctor.OK,
			Detail: fmt.Sprintf("%d instance(s) of %d service(s), none critical", tot.Instances, len(Summarize(ins)))}}
		if len(critical) > 0 {
			res[0] = doctor.Result{Check: names[0], Status: doctor.Warn,
				Detail: fmt.Sprintf("%d of %d instance(s) critical: %s", len(critical), tot.Instances, first(critical, 3)),
				Hint:   "microctl health --state critical; microctl registry prune removes those that stay critical"}
		}
		if len(stale) > 0 {
			res = append(res, doctor.Result{Check: names[1], Status: doctor.Warn,
				Detail: fmt.Sprintf("%d instance(s) on nodes whose agent is gone (serfHealth critical): %s", len(stale), first(stale, 3)),
				Hint:   "they stay registered until Consul reaps the node; microctl registry prune --catalog-fallback removes them"})
		} else {
			res = append(res, doctor.Result{Check: names[1], Status: doctor.OK, Detail: "no instance on a node whose agent is gone"})
		}
		rep := Lint(ins, LintOptions{})
		var errs []string
		for _, f := range rep.Findings {
			if f.Severity == SevError {
				errs = append(errs, f.Rule)
			}
		}
		if len(errs) > 0 {
			res = append(res, doctor.Result{Check: names[2], Status: doctor.Warn,
				Detail: fmt.Sprintf("%d registration problem(s): %s", len(errs), first(uniq(errs), 4)),
				Hint:   "microctl health lint"})
		} else {
			res = append(res, doctor.Result{Check: names[2], Status: doctor.OK, Detail: "no registration errors found"})
		}
		return res
	}
}

func first(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

func uniq(items []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range items {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Doctor is what this package offers `microctl doctor`: the registry
// checks. Without a Consul client they are skipped; consul.agent already
// says why.
func Doctor(consul func() (*registry.Client, error)) []doctor.Descriptor {
	return []doctor.Descriptor{
		doctor.Lazy([]string{"registry.critical", "registry.stale", "registry.lint"}, consul,
			doctor.SkipAll("no Consul client"),
			func(c *registry.Client) doctor.Probe { return RegistryProbe(c) }),
	}
}
