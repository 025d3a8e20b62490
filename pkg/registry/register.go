package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// Instance is one service instance registering itself the way go-micro's
// Consul registry does.
type Instance struct {
	Name      string
	Version   string
	ID        string // go-micro uses <name>-<uuid>
	Address   string // the address other services dial: on Swarm, the overlay IP
	Port      int
	Metadata  map[string]string // node metadata: transport, broker, server, registry, protocol, ...
	Endpoints []Endpoint
	// TTL is how long Consul keeps the instance passing without a
	// heartbeat (go-micro's RegisterTTL); 0 registers no check at all.
	TTL time.Duration
	// Interval is how often the instance heartbeats or re-registers
	// (go-micro's RegisterInterval).
	Interval time.Duration
}

// CheckID is the ID Consul gives the TTL check of a service registered with
// one inline check.
func (in Instance) CheckID() string { return "service:" + in.ID }

// DeregisterAfter is go-micro's DeregisterCriticalServiceAfter for a TTL:
// the TTL plus a 5 s splay, and never under Consul's 1 minute minimum.
func DeregisterAfter(ttl time.Duration) time.Duration {
	return max(ttl, time.Minute) + 5*time.Second
}

// Registration is the request go-micro sends for the instance, plus the TTL,
// the interval and the deregistration delay in Meta (MetaRegisterTTL,
// MetaRegisterInterval, MetaDeregisterAfter), since Consul returns none of
// them.
func (in Instance) Registration() *api.AgentServiceRegistration {
	tags := EncodeMetadata(in.Metadata)
	tags = append(tags, EncodeEndpoints(in.Endpoints)...)
	tags = append(tags, EncodeVersion(in.Version))
	meta := map[string]string{}
	for k, v := range in.Metadata {
		if validMetaKey(k) {
			meta[k] = v
		}
	}
	reg := &api.AgentServiceRegistration{
		ID: in.ID, Name: in.Name, Tags: tags, Address: in.Address, Port: in.Port, Meta: meta,
	}
	if in.TTL > 0 {
		meta[MetaRegisterTTL] = in.TTL.String()
		meta[MetaDeregisterAfter] = DeregisterAfter(in.TTL).String()
		reg.Check = &api.AgentServiceCheck{
			TTL:                            in.TTL.String(),
			DeregisterCriticalServiceAfter: DeregisterAfter(in.TTL).String(),
		}
	}
	if in.Interval > 0 {
		meta[MetaRegisterInterval] = in.Interval.String()
	}
	return reg
}

// Consul accepts Meta keys of letters, digits, '-' and '_' only, up to 128
// characters; a metadata key outside that stays in the t- tags alone.
func validMetaKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, r := range k {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// Registrar keeps an instance registered: it registers, passes the TTL
// check every Interval, and registers again when the agent has lost the
// instance (an agent restart, or the check reaped after going critical).
type Registrar struct {
	c  *Client
	in Instance
}

// NewRegistrar returns a registrar for in.
func NewRegistrar(c *Client, in Instance) *Registrar { return &Registrar{c: c, in: in} }

// Register registers the instance with the local agent and passes its TTL
// check at once, so it is passing from the start rather than critical
// until the first interval (a TTL check starts critical).
func (r *Registrar) Register(ctx context.Context) error {
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := r.c.API.Agent().ServiceRegisterOpts(r.in.Registration(), opts); err != nil {
		return fmt.Errorf("register %s: %w", r.in.ID, r.c.Err(err))
	}
	return r.heartbeat(ctx)
}

func (r *Registrar) heartbeat(ctx context.Context) error {
	if r.in.TTL <= 0 {
		return nil
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	err := r.c.API.Agent().UpdateTTLOpts(r.in.CheckID(), "", api.HealthPassing, q)
	if err != nil {
		return fmt.Errorf("pass TTL of %s: %w", r.in.ID, r.c.Err(err))
	}
	return nil
}

// Run heartbeats every Interval until ctx is done. A failed heartbeat is
// followed by a fresh registration; errors are reported through onErr and
// never end the loop, as a go-micro service keeps trying.
func (r *Registrar) Run(ctx context.Context, onErr func(error)) {
	interval := r.in.Interval
	if interval <= 0 {
		interval = 30 * time.Second // go-micro's default RegisterInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.heartbeat(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if err2 := r.Register(ctx); err2 != nil && onErr != nil {
				onErr(errors.Join(err, err2))
			}
		}
	}
}

// Deregister removes the instance from the local agent.
func (r *Registrar) Deregister(ctx context.Context) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := r.c.API.Agent().ServiceDeregisterOpts(r.in.ID, q); err != nil {
		return fmt.Errorf("deregister %s: %w", r.in.ID, r.c.Err(err))
	}
	return nil
}

// ParseSeconds reads a go-micro style duration flag: whole seconds
// ("15", as --register_ttl takes them) or a Go duration ("15s", "1m30s").
func ParseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want seconds (15) or a Go duration (15s)", s)
	}
	return d, nil
}
