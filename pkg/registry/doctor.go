package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/microctl/microctl/pkg/doctor"
)

// AgentProbe checks that Consul answers, has elected a leader, and accepts
// the token microctl presents.
func AgentProbe(c *Client) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		info, err := c.Agent(ctx)
		if err != nil {
			r := doctor.Result{Check: "consul.agent", Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)}
			// A refusal on /agent/self still proves the agent is up; whether
			// the token itself is at fault is the token check's business
			// (a valid token may simply lack agent:read).
			var pe *PermissionError
			if errors.As(err, &pe) {
				return []doctor.Result{
					{Check: "consul.agent", Status: doctor.OK,
						Detail: fmt.Sprintf("Consul answers at %s (agent details hidden: %s)", c.Addr, pe.Detail)},
					leaderResult(ctx, c),
					tokenResult(ctx, c),
				}
			}
			return append([]doctor.Result{r}, doctor.Skipped("Consul unreachable", "consul.leader", "consul.token")...)
		}
		return []doctor.Result{
			{Check: "consul.agent", Status: doctor.OK,
				Detail: fmt.Sprintf("Consul %s at %s (node %s, datacenter %s)", info.Version, c.Addr, info.NodeName, info.Datacenter)},
			leaderResult(ctx, c),
			tokenResult(ctx, c),
		}
	}
}

func leaderResult(ctx context.Context, c *Client) doctor.Result {
	leader, err := c.Leader(ctx)
	switch {
	case err != nil:
		return doctor.Result{Check: "consul.leader", Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)}
	case leader == "":
		return doctor.Result{Check: "consul.leader", Status: doctor.Fail, Detail: "no cluster leader elected",
			Hint: "check that a quorum of Consul servers is up: consul operator raft list-peers"}
	}
	return doctor.Result{Check: "consul.leader", Status: doctor.OK, Detail: "leader " + leader}
}

func tokenResult(ctx context.Context, c *Client) doctor.Result {
	st, err := c.Token(ctx)
	if err != nil {
		return doctor.Result{Check: "consul.token", Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)}
	}
	if !st.ACLsEnabled {
		return doctor.Result{Check: "consul.token", Status: doctor.OK, Detail: "ACLs are disabled: no token needed"}
	}
	d := "token accepted"
	if st.Description != "" {
		d += fmt.Sprintf(" (%s)", st.Description)
	}
	if len(st.Policies) > 0 {
		d += "; policies: " + strings.Join(st.Policies, ", ")
	}
	return doctor.Result{Check: "consul.token", Status: doctor.OK, Detail: d}
}

// Doctor is what this package offers `microctl doctor`: the agent checks,
// building the Consul client only when they run. A client that cannot be
// built (a token file that does not exist) fails consul.agent with the
// reason.
func Doctor(consul func() (*Client, error)) []doctor.Descriptor {
	return []doctor.Descriptor{
		doctor.Lazy([]string{"consul.agent", "consul.leader", "consul.token"}, consul, doctor.FailFirst,
			func(c *Client) doctor.Probe { return AgentProbe(c) }),
	}
}
