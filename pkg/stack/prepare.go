package stack

import (
	"context"

	"github.com/microctl/microctl/pkg/compose"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// PrepareOptions say which compose files make the stack and how to plan it.
type PrepareOptions struct {
	Load compose.LoadOptions
	Plan PlanOptions
}

// Prepare is the one way into a deploy, and owns its call order: load the
// compose files, ask the engine once whether it is a swarm manager (which
// also settles the API version the specs are written for), convert the
// project for that version, and plan against what runs. It changes nothing.
//
// connect is called only once the files have loaded, so a bad file is
// reported without dialling the engine.
func Prepare(ctx context.Context, connect func() (StackAPI, error), o PrepareOptions) (*Plan, error) {
	proj, loadWarnings, err := compose.LoadCompose(ctx, o.Load)
	if err != nil {
		return nil, err
	}
	api, err := connect()
	if err != nil {
		return nil, err
	}
	info, err := sw.RequireManager(ctx, api)
	if err != nil {
		return nil, err
	}
	st, err := compose.Convert(proj, compose.ConvertOptions{APIVersion: api.ClientVersion()})
	if err != nil {
		return nil, err
	}
	st.Warnings = append(loadWarnings, st.Warnings...)
	return makePlan(ctx, api, info, st, o.Plan)
}
