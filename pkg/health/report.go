package health

import "github.com/microctl/microctl/pkg/registry"

// The values `microctl health --state` and `--fail-on` accept.
var (
	StateFilters = []string{"any", registry.StatusPassing, registry.StatusWarning, registry.StatusCritical}
	FailOnLevels = []string{registry.StatusWarning, registry.StatusCritical, "never"}
)

// Report is `microctl health -o json`: the instances shown, the counts
// over every instance read, and the verdict. The JSON field names stay
// stable.
type Report struct {
	Instances []Instance `json:"instances"`
	Summary   Summary    `json:"summary"`
	FailOn    string     `json:"fail_on"`
	Unhealthy bool       `json:"unhealthy"`
	// Failing is how many instances are at least as bad as FailOn.
	Failing int `json:"-"`
}

// Summary counts instances by status.
type Summary struct {
	Services int `json:"services"`
	Counts
}

// ReportOptions select what a Report shows and when it is unhealthy.
type ReportOptions struct {
	// State keeps only the checks in this state ("any" keeps all); an
	// instance left with none is not shown. An instance without any check
	// counts as passing (Consul reports it so).
	State string
	// FailOn is the least bad status that makes the report unhealthy:
	// warning, critical, or "never".
	FailOn string
}

// NewReport counts every instance (the summary and the verdict are over
// everything read, whatever --state shows) and keeps those State selects.
func NewReport(instances []Instance, opts ReportOptions) Report {
	rep := Report{Instances: []Instance{}, FailOn: opts.FailOn,
		Summary: Summary{Services: len(Summarize(instances)), Counts: Total(instances)}}
	for _, in := range instances {
		if opts.FailOn != "never" && AtLeast(in.Status, opts.FailOn) {
			rep.Failing++
		}
		if opts.State != "any" && opts.State != "" {
			var keep []CheckState
			for _, ch := range in.Checks {
				if ch.Status == opts.State {
					keep = append(keep, ch)
				}
			}
			if len(keep) == 0 && !(len(in.Checks) == 0 && opts.State == registry.StatusPassing) {
				continue
			}
			in.Checks = keep
		}
		rep.Instances = append(rep.Instances, in)
	}
	rep.Unhealthy = rep.Failing > 0
	return rep
}
