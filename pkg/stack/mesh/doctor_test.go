package mesh

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

func TestDoctorProbe(t *testing.T) {
	svc := func(id, name string, labels map[string]string) swarm.Service {
		l := map[string]string{labelNamespace: "demo"}
		for k, v := range labels {
			l[k] = v
		}
		return swarm.Service{ID: id, Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name, Labels: l}}}
	}
	task := func(id, service, addr string, state swarm.TaskState) swarm.Task {
		tk := swarmTask(id, 1, addr, state, t0)
		tk.ServiceID = service
		return tk
	}
	healthy := &fakeEngine{
		services: []swarm.Service{svc("svc1", "demo_greeter", nil), svc("svc2", "demo_batch", nil)},
		tasks:    []swarm.Task{task("t1", "svc1", "10.0.1.5", swarm.TaskStateRunning), task("t2", "svc2", "10.0.1.9", swarm.TaskStateRunning)},
	}
	broken := &fakeEngine{
		services: []swarm.Service{svc("svc1", "demo_greeter", map[string]string{Label: "go.micro.srv.greeter"})},
		tasks: []swarm.Task{
			task("t1", "svc1", "10.0.1.5", swarm.TaskStateRunning),
			task("t2", "svc1", "10.0.1.6", swarm.TaskStateRunning),
			task("t0", "svc1", "10.0.1.4", swarm.TaskStateShutdown),
		},
	}
	instances := func() map[string][]registry.ServiceInstance {
		return map[string][]registry.ServiceInstance{"go.micro.srv.greeter": {
			regInstance("g1", "10.0.1.5", "passing", "15s"),
			regInstance("g0", "10.0.1.4", "critical", "15s"),
		}}
	}
	tests := []struct {
		name   string
		eng    *fakeEngine
		consul *fakeConsul
		want   map[string]doctor.Status
		detail map[string]string
	}{
		{"all registered, a non-mesh service ignored", healthy,
			&fakeConsul{instances: map[string][]registry.ServiceInstance{"go.micro.srv.greeter": {regInstance("g1", "10.0.1.5", "passing", "15s")}}},
			map[string]doctor.Status{"mesh.orphans": doctor.OK, "mesh.silent": doctor.OK},
			map[string]string{"mesh.orphans": "1 mesh service(s) of 2"}},
		{"an orphan and a silent task", broken, &fakeConsul{instances: instances()},
			map[string]doctor.Status{"mesh.orphans": doctor.Fail, "mesh.silent": doctor.Fail},
			map[string]string{"mesh.orphans": "instance g0 at 10.0.1.4: its task no longer runs", "mesh.silent": "no instance of go.micro.srv.greeter is registered at 10.0.1.6"}},
		{"Consul unreachable is a warning, not ok", broken,
			&fakeConsul{err: &registry.UnreachableError{Addr: "127.0.0.1:1", Err: errors.New("connection refused")}},
			map[string]doctor.Status{"mesh.orphans": doctor.Warn, "mesh.silent": doctor.Warn},
			map[string]string{"mesh.silent": "cannot see Consul"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := DoctorProbe(tt.eng, tt.consul)(context.Background())
			if len(res) != 2 {
				t.Fatalf("results %+v", res)
			}
			for _, r := range res {
				if r.Status != tt.want[r.Check] {
					t.Errorf("%s: %s (%s), want %s", r.Check, r.Status, r.Detail, tt.want[r.Check])
				}
				if d := tt.detail[r.Check]; d != "" && !strings.Contains(r.Detail, d) {
					t.Errorf("%s: detail %q, want %q", r.Check, r.Detail, d)
				}
			}
		})
	}
}
