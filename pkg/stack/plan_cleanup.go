package stack

import (
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/compose"
)

// serviceRefs is what one service uses, now or for a rollback.
type serviceRefs struct {
	configs, secrets, networks map[string]bool // by name or ID
}

// refsOf collects the configs, secrets and networks a spec refers to, by
// both name and ID, so either form matches.
func (r *serviceRefs) add(spec *swarm.ServiceSpec) {
	if spec == nil {
		return
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, c := range cs.Configs {
			r.configs[c.ConfigID], r.configs[c.ConfigName] = true, true
		}
		for _, s := range cs.Secrets {
			r.secrets[s.SecretID], r.secrets[s.SecretName] = true, true
		}
	}
	for _, n := range spec.TaskTemplate.Networks {
		r.networks[n.Target] = true
	}
	//lint:ignore SA1019 old services use the deprecated field
	for _, n := range spec.Networks {
		r.networks[n.Target] = true
	}
}

func newRefs() *serviceRefs {
	return &serviceRefs{configs: map[string]bool{}, secrets: map[string]bool{}, networks: map[string]bool{}}
}

// projectServices is the set of specs (current and previous) that will
// exist once the plan has run: a config or secret one of them names is in
// use, either now or for a rollback to the previous spec, and must stay.
func projectServices(all []swarm.Service, plan []ServicePlan) *serviceRefs {
	r := newRefs()
	byID := map[string]ServicePlan{}
	for _, sp := range plan {
		if sp.ID != "" {
			byID[sp.ID] = sp
		}
		if sp.Action == ActionCreate || sp.Action == ActionUpdate {
			s := sp.spec
			r.add(&s)
		}
	}
	for i := range all {
		s := &all[i]
		sp, ok := byID[s.ID]
		switch {
		case ok && sp.Action == ActionRemove:
			continue
		case ok && sp.Action == ActionUpdate:
			// The current spec becomes the previous one.
			r.add(&s.Spec)
		default:
			r.add(&s.Spec)
			r.add(s.PreviousSpec)
		}
	}
	return r
}

// liveRefs is what the services on the engine use right now.
func liveRefs(all []swarm.Service) *serviceRefs {
	r := newRefs()
	for i := range all {
		r.add(&all[i].Spec)
		r.add(all[i].PreviousSpec)
	}
	return r
}

// cleanup lists the stack's configs and secrets to remove once nothing
// uses them: old versions of the ones in the file always, and with --prune
// every one the file no longer has, plus the stack's unused networks.
func (p *Plan) cleanup(refs *serviceRefs, nets []network.Summary) []ObjectPlan {
	var out []ObjectPlan
	wantCfg, wantSec, wantNet := map[string]bool{}, map[string]bool{}, map[string]bool{}
	baseCfg, baseSec := map[string]bool{}, map[string]bool{}
	for _, o := range p.stack.Configs {
		wantCfg[o.Name], baseCfg[o.Base] = true, true
	}
	for _, o := range p.stack.Secrets {
		wantSec[o.Name], baseSec[o.Base] = true, true
	}
	for _, n := range p.stack.Networks {
		wantNet[n.Name] = true
	}
	for _, n := range p.stack.External {
		wantNet[n] = true
	}
	for _, c := range p.configs {
		name := c.Spec.Name
		if c.Spec.Labels[compose.LabelNamespace] != p.Stack || wantCfg[name] || refs.configs[name] || refs.configs[c.ID] {
			continue
		}
		if baseCfg[compose.BaseName(name)] {
			out = append(out, ObjectPlan{Kind: "config", Name: name, Action: ActionRemove, Note: "old version", ID: c.ID})
		} else if p.opts.Prune {
			out = append(out, ObjectPlan{Kind: "config", Name: name, Action: ActionRemove, Note: "unused", ID: c.ID})
		}
	}
	for _, s := range p.secrets {
		name := s.Spec.Name
		if s.Spec.Labels[compose.LabelNamespace] != p.Stack || wantSec[name] || refs.secrets[name] || refs.secrets[s.ID] {
			continue
		}
		if baseSec[compose.BaseName(name)] {
			out = append(out, ObjectPlan{Kind: "secret", Name: name, Action: ActionRemove, Note: "old version", ID: s.ID})
		} else if p.opts.Prune {
			out = append(out, ObjectPlan{Kind: "secret", Name: name, Action: ActionRemove, Note: "unused", ID: s.ID})
		}
	}
	if p.opts.Prune {
		for _, n := range nets {
			if n.Labels[compose.LabelNamespace] != p.Stack || wantNet[n.Name] || refs.networks[n.Name] || refs.networks[n.ID] {
				continue
			}
			out = append(out, ObjectPlan{Kind: "network", Name: n.Name, Action: ActionRemove, Note: "unused", ID: n.ID})
		}
	}
	return out
}
