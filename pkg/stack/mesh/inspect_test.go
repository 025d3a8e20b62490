package mesh

import (
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	svc := Service{Name: "demo_greeter", Consul: "go.micro.srv.greeter"}
	ob := Observation{At: t0.Add(time.Minute),
		Tasks: []Task{
			{ID: "ok", Slot: 1, Running: true, Current: true, Addrs: []string{"10.0.1.5"}, Since: t0},
			{ID: "silent", Slot: 2, Running: true, Current: true, Addrs: []string{"10.0.1.6"}, Since: t0},
			{ID: "gone", Slot: 3, Addrs: []string{"10.0.1.7"}, Since: t0},
		},
		Instances: []Instance{
			{ID: "g-ok", Address: "10.0.1.5", Status: Passing},
			{ID: "g-orphan", Address: "10.0.1.7", Status: Critical},
			{ID: "g-elsewhere", Address: "10.9.9.9", Status: Passing},
		}}
	r := Match(svc, ob)
	if len(r.Tasks) != 2 || r.Tasks[0].Instance != "g-ok" || r.Tasks[0].Status != Passing || r.Tasks[0].Up != time.Minute || r.Tasks[1].Instance != "" {
		t.Errorf("tasks %+v", r.Tasks)
	}
	want := []struct{ kind, task, instance string }{
		{"silent-task", "silent", ""},
		{"orphan-instance", "gone", "g-orphan"},
		{"orphan-instance", "", "g-elsewhere"},
	}
	if len(r.Problems) != len(want) {
		t.Fatalf("problems %+v, want %d", r.Problems, len(want))
	}
	for i, w := range want {
		p := r.Problems[i]
		if p.Kind != w.kind || p.Task != w.task || p.Instance != w.instance || p.Detail == "" {
			t.Errorf("problem %d = %+v, want %+v", i, p, w)
		}
	}
	if r.Problems[1].Status != Critical || r.Problems[2].Status != Passing {
		t.Errorf("orphans' statuses: %s, %s", r.Problems[1].Status, r.Problems[2].Status)
	}

	// All well: no problem.
	ok := Match(svc, Observation{At: t0, Tasks: ob.Tasks[:1], Instances: ob.Instances[:1]})
	if len(ok.Problems) != 0 || len(ok.Tasks) != 1 {
		t.Errorf("healthy service: %+v", ok)
	}
}
