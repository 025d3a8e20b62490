package keysched

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// fakeAPI embeds the interface and records what was created: only the
// methods a test needs are implemented.
type fakeAPI struct {
	API
	services []swarm.Service
	secrets  []swarm.Secret
	updated  int
	removed  []string
}

func (f *fakeAPI) ServiceList(ctx context.Context, o swarm.ServiceListOptions) ([]swarm.Service, error) {
	var out []swarm.Service
	for _, s := range f.services {
		if o.Filters.Len() == 0 || o.Filters.ExactMatch("name", s.Spec.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeAPI) ServiceCreate(ctx context.Context, s swarm.ServiceSpec, o swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error) {
	f.services = append(f.services, swarm.Service{ID: "svc-" + s.Name, Spec: s})
	return swarm.ServiceCreateResponse{ID: "svc-" + s.Name}, nil
}

func (f *fakeAPI) ServiceUpdate(ctx context.Context, id string, v swarm.Version, s swarm.ServiceSpec, o swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	for i := range f.services {
		if f.services[i].ID == id {
			f.services[i].Spec = s
		}
	}
	f.updated++
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *fakeAPI) ServiceRemove(ctx context.Context, id string) error {
	for i, s := range f.services {
		if s.ID == id {
			f.services = append(f.services[:i], f.services[i+1:]...)
			return nil
		}
	}
	return nil
}

func (f *fakeAPI) SecretList(ctx context.Context, o swarm.SecretListOptions) ([]swarm.Secret, error) {
	return f.secrets, nil
}

func (f *fakeAPI) SecretCreate(ctx context.Context, s swarm.SecretSpec) (swarm.SecretCreateResponse, error) {
	id := "sec" + s.Name
	f.secrets = append(f.secrets, swarm.Secret{ID: id, Spec: s})
	return swarm.SecretCreateResponse{ID: id}, nil
}

func (f *fakeAPI) SecretRemove(ctx context.Context, id string) error {
	for i, s := range f.secrets {
		if s.ID == id {
			f.secrets = append(f.secrets[:i], f.secrets[i+1:]...)
			f.removed = append(f.removed, s.Spec.Name)
			return nil
		}
	}
	return nil
}

func TestScheduleKeepsCredentialsInSecrets(t *testing.T) {
	ctx := context.Background()
	f := &fakeAPI{}
	const token = "5e1d6a4b-token-value"
	o := Options{Stack: "demo", Path: "micro/config/jwt", Every: 30 * 24 * time.Hour, Network: "micro",
		Consul: ConsulSecret{Address: "consul:8500", Token: token}, KEK: []byte("a2V5\n")}
	res, err := Schedule(ctx, f, o)
	if err != nil || res.Action != "created" || len(res.Secrets) != 2 {
		t.Fatalf("schedule: %+v, %v", res, err)
	}
	spec := f.services[0].Spec
	cs := spec.TaskTemplate.ContainerSpec
	if spec.Name != "demo_key-rotator" || spec.Labels["com.docker.stack.namespace"] != "demo" || cs.Image != DefaultImage {
		t.Fatalf("spec: %+v", spec.Annotations)
	}
	if got := strings.Join(cs.Args, " "); got != "key rotate --every 30d --path micro/config/jwt --consul-file /run/secrets/microctl-consul" {
		t.Fatalf("args: %s", got)
	}
	all := strings.Join(append(append([]string{}, cs.Args...), cs.Env...), " ")
	if strings.Contains(all, token) || strings.Contains(all, "consul:8500") || strings.Contains(all, "a2V5") {
		t.Fatalf("a credential is in the args or environment: %s", all)
	}
	if len(cs.Secrets) != 2 || cs.Secrets[0].SecretID == "" || cs.Secrets[0].File.Mode != 0o400 {
		t.Fatalf("secret refs: %+v", cs.Secrets)
	}
	var consulData string
	for _, s := range f.secrets {
		if strings.Contains(s.Spec.Name, "-consul-") {
			consulData = string(s.Spec.Data)
		}
	}
	if !strings.Contains(consulData, token) || !strings.Contains(consulData, "consul:8500") {
		t.Fatalf("consul secret: %s", consulData)
	}
	// Again with a new token and the JWKS service: the rotator is
	// updated, the JWKS service created, the old secret goes.
	o.Consul.Token = "other"
	o.JWKSPort = 18081
	res, err = Schedule(ctx, f, o)
	if err != nil || res.Action != "updated" || f.updated != 1 || len(res.Removed) != 1 || len(f.secrets) != 2 || len(f.services) != 2 {
		t.Fatalf("reschedule: %+v, %v (secrets %d)", res, err, len(f.secrets))
	}
	js := f.services[1].Spec
	if js.Name != "demo_jwks" || js.EndpointSpec.Ports[0].PublishedPort != 18081 || js.EndpointSpec.Ports[0].PublishMode != swarm.PortConfigPublishModeHost ||
		len(js.TaskTemplate.ContainerSpec.Secrets) != 1 || len(js.TaskTemplate.ContainerSpec.Env) != 0 {
		t.Fatalf("jwks spec: %+v %+v", js.Annotations, js.TaskTemplate.ContainerSpec)
	}
	if got := strings.Join(js.TaskTemplate.ContainerSpec.Args, " "); !strings.HasPrefix(got, "key serve --listen 0.0.0.0:8081 --path micro/config/jwt --consul-file") {
		t.Fatalf("jwks args: %s", got)
	}
	res, err = Remove(ctx, f, "demo")
	if err != nil || res.Action != "removed" || res.JWKS != "demo_jwks" || len(f.secrets) != 0 || len(f.services) != 0 {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	if res, _ := Remove(ctx, f, "demo"); res.Action != "none" {
		t.Fatalf("remove twice: %+v", res)
	}
}
