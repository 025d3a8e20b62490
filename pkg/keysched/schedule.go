// Package keysched deploys the key rotator (`microctl key rotate --every`)
// as a Swarm service: `microctl key schedule`.
package keysched

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// API is the part of the Docker Engine API the schedule needs;
// client.APIClient is one.
type API interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	ServiceRemove(ctx context.Context, serviceID string) error
	SecretList(ctx context.Context, options swarm.SecretListOptions) ([]swarm.Secret, error)
	SecretCreate(ctx context.Context, secret swarm.SecretSpec) (swarm.SecretCreateResponse, error)
	SecretRemove(ctx context.Context, id string) error
}

// Defaults.
const (
	DefaultStack    = "microctl"
	DefaultImage    = "microctl/microctl:dev"
	DefaultReplicas = 2
	// LabelRotator marks the service and secrets of a stack's rotator.
	LabelRotator   = "microctl.key-rotator"
	labelNamespace = "com.docker.stack.namespace"
	// ConsulSecretTarget and KEKSecretTarget are where the secrets appear
	// in the container (/run/secrets/<target>).
	ConsulSecretTarget = "microctl-consul"
	KEKSecretTarget    = "microctl-kek"
)

// ConsulSecret is the content of the Consul secret: the address and token
// the rotator uses, kept out of the service's environment and arguments
// (which `docker service inspect` shows to anyone with API access).
type ConsulSecret struct {
	Address string `json:"address"`
	Token   string `json:"token,omitempty"`
}

// Options describe the rotator service.
type Options struct {
	Stack    string
	Path     string
	Every    time.Duration
	Image    string
	Replicas uint64
	Network  string // attach to this network (the one Consul is on)
	Consul   ConsulSecret
	KEK      []byte // the KEK file's content, for a sealed ring
	// Extra arguments for `key rotate` (e.g. --grace).
	Args []string
	// JWKSPort, when set, also deploys `key serve` as <stack>_jwks,
	// published on this host port (mode host: no routing mesh needed).
	JWKSPort uint32
	// MaxAge is key serve's --max-age (default: its own).
	MaxAge time.Duration
}

// Result says what Schedule or Remove did.
type Result struct {
	Service string   `json:"service"`
	JWKS    string   `json:"jwks_service,omitempty"`
	Action  string   `json:"action"` // created, updated, removed, none
	Secrets []string `json:"secrets,omitempty"`
	Removed []string `json:"removed_secrets,omitempty"`
	Args    []string `json:"args,omitempty"`
	Warning string   `json:"warning,omitempty"`
}

// ServiceName is the rotator's service in stack.
func ServiceName(stack string) string { return stack + "_key-rotator" }

// JWKSServiceName is the JWKS endpoint's service in stack.
func JWKSServiceName(stack string) string { return stack + "_jwks" }

// JWKSSpec builds the service spec of `key serve` for the stack: the same
// image and Consul secret as the rotator, one replica, its port published
// in host mode.
func JWKSSpec(o Options, secretIDs map[string]string) swarm.ServiceSpec {
	spec := Spec(o, secretIDs)
	spec.Name = JWKSServiceName(o.Stack)
	delete(spec.Labels, "microctl.key.every")
	cs := spec.TaskTemplate.ContainerSpec
	cs.Hostname = ""
	listen := "0.0.0.0:8081"
	if o.Network == "host" {
		// In the host's network namespace there is nothing to publish:
		// listen on the port itself, on loopback only.
		listen = fmt.Sprintf("127.0.0.1:%d", o.JWKSPort)
	}
	cs.Args = []string{"key", "serve", "--listen", listen, "--path", o.Path, "--consul-file", "/run/secrets/" + ConsulSecretTarget}
	if o.MaxAge > 0 {
		cs.Args = append(cs.Args, "--max-age", o.MaxAge.String())
	}
	// key serve reads public keys only: no KEK.
	cs.Env = nil
	cs.Secrets = cs.Secrets[:1]
	one := uint64(1)
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}
	if o.Network != "host" {
		spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP,
			TargetPort: 8081, PublishedPort: o.JWKSPort, PublishMode: swarm.PortConfigPublishModeHost}}}
	}
	return spec
}

// FormatEvery writes a duration the way `--every` reads it back.
func FormatEvery(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func secretName(stack, kind string, data []byte) string {
	sum := sha256.Sum256(data)
	return fmt.Sprintf("%s_key-rotator-%s-%s", stack, kind, hex.EncodeToString(sum[:4]))
}

// Spec builds the service spec: the static microctl image running
// `key rotate --every`, the Consul address and token (and the KEK) as
// Docker secrets read from files, never environment values.
func Spec(o Options, secretIDs map[string]string) swarm.ServiceSpec {
	name := ServiceName(o.Stack)
	args := []string{"key", "rotate", "--every", FormatEvery(o.Every), "--path", o.Path, "--consul-file", "/run/secrets/" + ConsulSecretTarget}
	args = append(args, o.Args...)
	// Audit records and doctor name the rotator $USER@hostname: make that
	// say which task it is.
	env := []string{"USER=key-rotator"}
	refs := []*swarm.SecretReference{secretRef(secretIDs, secretName(o.Stack, "consul", consulJSON(o.Consul)), ConsulSecretTarget)}
	if len(o.KEK) > 0 {
		refs = append(refs, secretRef(secretIDs, secretName(o.Stack, "kek", o.KEK), KEKSecretTarget))
		env = append(env, "MICROCTL_KEK_FILE=/run/secrets/"+KEKSecretTarget)
	}
	grace := 20 * time.Second
	replicas := o.Replicas
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{
			labelNamespace: o.Stack, LabelRotator: o.Stack, "com.docker.stack.image": o.Image,
			"microctl.key.path": o.Path, "microctl.key.every": FormatEvery(o.Every),
		}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           o.Image,
				Hostname:        "{{.Service.Name}}.{{.Task.Slot}}",
				Args:            args,
				Env:             env,
				Labels:          map[string]string{labelNamespace: o.Stack},
				Secrets:         refs,
				StopGracePeriod: &grace,
				ReadOnly:        true,
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(5 * time.Second)},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	if o.Network != "" {
		spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: o.Network}}
	}
	return spec
}

func ptr[T any](v T) *T { return &v }

func consulJSON(c ConsulSecret) []byte {
	b, _ := json.Marshal(c)
	return b
}

func secretRef(ids map[string]string, name, target string) *swarm.SecretReference {
	return &swarm.SecretReference{SecretID: ids[name], SecretName: name,
		File: &swarm.SecretReferenceFileTarget{Name: target, UID: "0", GID: "0", Mode: 0o400}}
}

// Schedule creates or updates the rotator service of o.Stack.
func Schedule(ctx context.Context, api API, o Options) (*Result, error) {
	if o.Stack == "" {
		o.Stack = DefaultStack
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.Consul.Address == "" {
		return nil, errors.New("no Consul address for the rotator (--service-consul-addr)")
	}
	res := &Result{Service: ServiceName(o.Stack)}
	want := map[string][]byte{secretName(o.Stack, "consul", consulJSON(o.Consul)): consulJSON(o.Consul)}
	if len(o.KEK) > 0 {
		want[secretName(o.Stack, "kek", o.KEK)] = o.KEK
	}
	existing, err := rotatorSecrets(ctx, api, o.Stack)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for name, data := range want {
		if id, ok := existing[name]; ok {
			ids[name] = id
			continue
		}
		r, err := api.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name,
			Labels: map[string]string{labelNamespace: o.Stack, LabelRotator: o.Stack}}, Data: data})
		if err != nil {
			return nil, fmt.Errorf("create secret %s: %w", name, err)
		}
		ids[name] = r.ID
		res.Secrets = append(res.Secrets, name)
	}
	spec := Spec(o, ids)
	res.Args = spec.TaskTemplate.ContainerSpec.Args
	if res.Action, err = apply(ctx, api, spec); err != nil {
		cleanup(ctx, api, res.Secrets)
		return nil, err
	}
	if o.JWKSPort != 0 {
		res.JWKS = JWKSServiceName(o.Stack)
		if _, err := apply(ctx, api, JWKSSpec(o, ids)); err != nil {
			return nil, err
		}
	}
	// Secrets of an earlier schedule: removed once no task uses them.
	for name, id := range existing {
		if _, ok := want[name]; ok {
			continue
		}
		if err := api.SecretRemove(ctx, id); err == nil {
			res.Removed = append(res.Removed, name)
		} else {
			res.Warning = fmt.Sprintf("old secret %s is still in use by a stopping task: remove it later with docker secret rm", name)
		}
	}
	return res, nil
}

// apply creates the service of spec, or updates the one of that name.
func apply(ctx context.Context, api API, spec swarm.ServiceSpec) (string, error) {
	svc, err := findService(ctx, api, spec.Name)
	if err != nil {
		return "", err
	}
	if svc == nil {
		if _, err := api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
			return "", fmt.Errorf("create service %s: %w", spec.Name, err)
		}
		return "created", nil
	}
	if _, ours := svc.Spec.Labels[LabelRotator]; !ours {
		return "", fmt.Errorf("a service %s exists and was not made by microctl key schedule; nothing was changed", spec.Name)
	}
	if _, err := api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return "", fmt.Errorf("update service %s: %w", spec.Name, err)
	}
	return "updated", nil
}

func cleanup(ctx context.Context, api API, created []string) {
	all, err := api.SecretList(ctx, swarm.SecretListOptions{})
	if err != nil {
		return
	}
	for _, s := range all {
		for _, n := range created {
			if s.Spec.Name == n {
				_ = api.SecretRemove(ctx, s.ID)
			}
		}
	}
}

// Remove deletes the rotator service of stack and its secrets.
func Remove(ctx context.Context, api API, stack string) (*Result, error) {
	if stack == "" {
		stack = DefaultStack
	}
	res := &Result{Service: ServiceName(stack), Action: "none"}
	for _, name := range []string{JWKSServiceName(stack), ServiceName(stack)} {
		svc, err := findService(ctx, api, name)
		if err != nil {
			return nil, err
		}
		if svc == nil || svc.Spec.Labels[LabelRotator] != stack {
			continue // not ours (a stack's own service of that name)
		}
		if err := api.ServiceRemove(ctx, svc.ID); err != nil && !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("remove service %s: %w", name, err)
		}
		if name == JWKSServiceName(stack) {
			res.JWKS = name
		} else {
			res.Action = "removed"
		}
	}
	secrets, err := rotatorSecrets(ctx, api, stack)
	if err != nil {
		return nil, err
	}
	var inUse []string
	for name, id := range secrets {
		// A secret stays in use until the service's tasks are gone.
		var rmErr error
		for i := 0; i < 50; i++ {
			if rmErr = api.SecretRemove(ctx, id); rmErr == nil || cerrdefs.IsNotFound(rmErr) {
				break
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			inUse = append(inUse, name)
			continue
		}
		res.Removed = append(res.Removed, name)
	}
	if len(inUse) > 0 {
		res.Warning = "secrets still in use, remove them later with docker secret rm: " + strings.Join(inUse, ", ")
	}
	return res, nil
}

func findService(ctx context.Context, api API, name string) (*swarm.Service, error) {
	list, err := api.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for i := range list {
		if list[i].Spec.Name == name {
			return &list[i], nil
		}
	}
	return nil, nil
}

func rotatorSecrets(ctx context.Context, api API, stack string) (map[string]string, error) {
	list, err := api.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelRotator+"="+stack))})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	out := map[string]string{}
	for _, s := range list {
		out[s.Spec.Name] = s.ID
	}
	return out, nil
}
