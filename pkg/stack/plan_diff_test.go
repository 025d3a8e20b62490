package stack

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/compose"
)

func baseSpec() swarm.ServiceSpec {
	one := uint64(1)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "s_web", Labels: map[string]string{compose.LabelNamespace: "s", compose.LabelImage: "microctl/greeter:dev"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  "microctl/greeter:dev",
				Env:    []string{"A=1", "B=2"},
				Labels: map[string]string{compose.LabelNamespace: "s"},
				Secrets: []*swarm.SecretReference{{SecretName: "s_tok-0123456789",
					File: &swarm.SecretReferenceFileTarget{Name: "tok", UID: "0", GID: "0", Mode: 0o444}}},
			},
			Resources: &swarm.ResourceRequirements{},
			Placement: &swarm.Placement{},
			Networks:  []swarm.NetworkAttachmentConfig{{Target: "s_default", Aliases: []string{"web"}}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 8080, PublishedPort: 18080}}},
	}
}

// stored is baseSpec as the engine gives it back: defaults filled in,
// networks by ID, secrets with IDs, empty structs dropped.
func stored() swarm.ServiceSpec {
	s := deepCopySpec(baseSpec())
	grace := 10 * time.Second
	delay := 5 * time.Second
	zero := uint64(0)
	cs := s.TaskTemplate.ContainerSpec
	cs.Isolation = "default"
	cs.StopGracePeriod = &grace
	cs.Env = []string{"B=2", "A=1"}
	cs.Secrets[0].SecretID = "secretid"
	cs.Secrets[0].File.Name = "/run/secrets/tok"
	s.TaskTemplate.Runtime = swarm.RuntimeContainer
	s.TaskTemplate.Resources = nil
	s.TaskTemplate.Placement = &swarm.Placement{Platforms: []swarm.Platform{{Architecture: "amd64", OS: "linux"}}}
	s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay, MaxAttempts: &zero}
	s.TaskTemplate.Networks[0].Target = "netid"
	s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: 5 * time.Second, Order: "stop-first"}
	s.RollbackConfig = &swarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: 5 * time.Second, Order: "stop-first"}
	s.EndpointSpec = &swarm.EndpointSpec{Mode: "vip", Ports: []swarm.PortConfig{{Protocol: "tcp", TargetPort: 8080, PublishedPort: 18080, PublishMode: "ingress"}}}
	return s
}

var netNames = map[string]string{"netid": "s_default"}

func TestDiffIgnoresWhatTheEngineFillsIn(t *testing.T) {
	if c := Diff(stored(), baseSpec(), netNames); len(c) != 0 {
		t.Errorf("stored vs sent: %v, want no change", c)
	}
	// Docker writes "microctl/greeter" as microctl/greeter:latest.
	a, b := baseSpec(), baseSpec()
	a.TaskTemplate.ContainerSpec.Image = "docker.io/microctl/greeter:latest"
	b.TaskTemplate.ContainerSpec.Image = "microctl/greeter"
	if c := Diff(a, b, nil); len(c) != 0 {
		t.Errorf("same image spelled twice: %v", c)
	}
	// Only the image label differs: nothing to update.
	b = baseSpec()
	b.Labels[compose.LabelImage] = "microctl/greeter:dev2"
	if c := Diff(baseSpec(), b, nil); len(c) != 0 {
		t.Errorf("image label only: %v", c)
	}
}

func TestDiffNamesTheChangedFields(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *swarm.ServiceSpec)
		want   string
	}{
		{"image", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "microctl/greeter:crash" },
			"image microctl/greeter:dev -> microctl/greeter:crash"},
		{"replicas", func(s *swarm.ServiceSpec) { three := uint64(3); s.Mode.Replicated.Replicas = &three }, "replicas 1 -> 3"},
		{"environment", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Env = []string{"A=1"} }, "environment"},
		{"command", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Args = []string{"-v"} }, "command"},
		{"ports", func(s *swarm.ServiceSpec) { s.EndpointSpec.Ports[0].PublishMode = "host" }, "ports"},
		{"secret version", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Secrets[0].SecretName = "s_tok-9999999999" }, "secrets"},
		{"update order", func(s *swarm.ServiceSpec) { s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Order: "start-first"} }, "deploy.update_config"},
		{"restart", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
		}, "deploy.restart_policy"},
		{"network", func(s *swarm.ServiceSpec) { s.TaskTemplate.Networks[0].Target = "other" }, "networks"},
		{"mode", func(s *swarm.ServiceSpec) { s.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}} }, "deploy.mode"},
		{"limits", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 1 << 20}}
		}, "deploy.resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := baseSpec()
			tt.change(&want)
			var got []string
			for _, c := range Diff(stored(), want, netNames) {
				got = append(got, c.String())
			}
			if g := strings.Join(got, ", "); g != tt.want {
				t.Errorf("changes %q, want %q", g, tt.want)
			}
		})
	}
}

func TestPlanImages(t *testing.T) {
	p := &Plan{Services: []ServicePlan{
		{Name: "a", Action: ActionCreate, Image: "microctl/greeter:dev"},
		{Name: "b", Action: ActionUnchanged, Image: "microctl/gateway:dev@sha256:0123456789012345678901234567890123456789012345678901234567890123"},
		{Name: "c", Action: ActionUpdate, Image: "docker.io/microctl/greeter:dev"},
		{Name: "d", Action: ActionRemove, Image: "old:1"},
	}}
	got := strings.Join(p.Images(), " ")
	if want := "microctl/gateway:dev microctl/greeter:dev"; got != want {
		t.Errorf("Images() = %q, want %q", got, want)
	}
}
