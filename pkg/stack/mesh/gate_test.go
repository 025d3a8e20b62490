package mesh

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func task(id string, slot int, addr string, running, current bool) Task {
	return Task{ID: id, Slot: slot, Addrs: []string{addr}, Running: running, Current: current}
}

func inst(id, addr, status string, index uint64) Instance {
	return Instance{ID: id, Node: "n1", Address: addr, Port: 8080, Status: status, CheckIndex: index, CreateIndex: 1}
}

// step is one observation and what the gate must answer to it.
type step struct {
	at        float64
	tasks     []Task
	instances []Instance
	want      Verdict
	reason    string   // substring of the reason, when set
	dereg     []string // instance IDs to deregister, when set
	foreign   []string
}

func TestGate(t *testing.T) {
	newTask := task("new1", 1, "10.0.1.5", true, true)
	oldGone := task("old1", 1, "10.0.1.4", false, false)
	oldRunning := task("old1", 1, "10.0.1.4", true, false)
	passing := func(index uint64) Instance { return inst("greeter-a", "10.0.1.5", Passing, index) }
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{
			name: "passes continuously for min-healthy, then converged",
			opts: Options{Service: "go.micro.srv.greeter", MinHealthy: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, want: Waiting, reason: "not registered yet"},
				{at: 2, tasks: []Task{newTask}, instances: []Instance{inst("greeter-a", "10.0.1.5", Critical, 5)}, want: Waiting, reason: "greeter-a is critical"},
				{at: 3, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Waiting, reason: "passing for 0s of 10s"},
				{at: 8, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Waiting, reason: "passing for 5s of 10s"},
				{at: 13, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Converged},
			},
		},
		{
			name: "a flap seen only through the check index resets the passing run",
			opts: Options{Service: "s", MinHealthy: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Waiting},
				{at: 8, tasks: []Task{newTask}, instances: []Instance{passing(9)}, want: Waiting, reason: "passing for 0s of 10s"},
				{at: 12, tasks: []Task{newTask}, instances: []Instance{passing(9)}, want: Waiting, reason: "passing for 4s of 10s"},
				{at: 18, tasks: []Task{newTask}, instances: []Instance{passing(9)}, want: Converged},
			},
		},
		{
			name: "warning during min-healthy resets the passing run",
			opts: Options{Service: "s", MinHealthy: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Waiting},
				{at: 6, tasks: []Task{newTask}, instances: []Instance{inst("greeter-a", "10.0.1.5", Warning, 7)}, want: Waiting, reason: "greeter-a is warning"},
				{at: 9, tasks: []Task{newTask}, instances: []Instance{passing(8)}, want: Waiting, reason: "passing for 0s"},
				{at: 19, tasks: []Task{newTask}, instances: []Instance{passing(8)}, want: Converged},
			},
		},
		{
			name: "critical after passing fails, and the gate stays failed",
			opts: Options{Service: "go.micro.srv.greeter", MinHealthy: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Waiting},
				{at: 5, tasks: []Task{newTask}, instances: []Instance{inst("greeter-a", "10.0.1.5", Critical, 7)}, want: Failed, reason: "1 instance of the new version went critical in Consul go.micro.srv.greeter"},
				{at: 30, tasks: []Task{newTask}, instances: []Instance{passing(8)}, want: Failed, reason: "went critical"},
			},
		},
		{
			name: "critical after min-healthy fails too",
			opts: Options{Service: "s", MinHealthy: 2 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Waiting},
				{at: 3, tasks: []Task{newTask}, instances: []Instance{passing(6)}, want: Converged},
				{at: 6, tasks: []Task{newTask}, instances: []Instance{inst("greeter-a", "10.0.1.5", Critical, 7)}, want: Failed},
			},
		},
		{
			name: "never registers: fails at the healthy deadline with one sentence",
			opts: Options{Service: "go.micro.srv.greeter", HealthyDeadline: 30 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask, task("new2", 2, "10.0.1.6", true, true), task("new3", 3, "10.0.1.7", true, true)}, want: Waiting},
				{at: 29, tasks: []Task{newTask, task("new2", 2, "10.0.1.6", true, true), task("new3", 3, "10.0.1.7", true, true)}, want: Waiting},
				{at: 30, tasks: []Task{newTask, task("new2", 2, "10.0.1.6", true, true), task("new3", 3, "10.0.1.7", true, true)}, want: Failed,
					reason: "3 new tasks ran, none registered in Consul go.micro.srv.greeter within 30s"},
			},
		},
		{
			name: "one of two never registers",
			opts: Options{Service: "s", HealthyDeadline: 30 * time.Second, MinHealthy: time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask, task("new2", 2, "10.0.1.6", true, true)}, instances: []Instance{passing(6)}, want: Waiting},
				{at: 31, tasks: []Task{newTask, task("new2", 2, "10.0.1.6", true, true)}, instances: []Instance{passing(6)}, want: Failed,
					reason: "2 new tasks ran, 1 not registered in Consul s within 30s"},
			},
		},
		{
			name: "registered but never passing fails at the deadline",
			opts: Options{Service: "s", HealthyDeadline: 30 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{inst("greeter-a", "10.0.1.5", Critical, 5)}, want: Waiting},
				{at: 31, tasks: []Task{newTask}, instances: []Instance{inst("greeter-a", "10.0.1.5", Critical, 5)}, want: Failed,
					reason: "1 new task registered in Consul s but not passing within 30s"},
			},
		},
		{
			name: "a task running before the gate began gets the deadline from the gate's start, not from its own (redeploy of an unchanged service)",
			opts: Options{Service: "s"},
			steps: []step{
				{at: 100, tasks: []Task{{ID: "t", Slot: 1, Addrs: []string{"10.0.1.9"}, Running: true, Current: true, Since: at(0)}}, want: Waiting, reason: "not registered yet"},
				{at: 129, tasks: []Task{{ID: "t", Slot: 1, Addrs: []string{"10.0.1.9"}, Running: true, Current: true, Since: at(0)}}, want: Waiting},
				{at: 130, tasks: []Task{{ID: "t", Slot: 1, Addrs: []string{"10.0.1.9"}, Running: true, Current: true, Since: at(0)}}, want: Failed, reason: "1 new task ran, none registered"},
			},
		},
		{
			name: "a task older than the deadline, passing: judged from when the gate saw it pass (a rollback to it)",
			opts: Options{Service: "s", MinHealthy: 10 * time.Second, HealthyDeadline: 30 * time.Second},
			steps: []step{
				{at: 100, tasks: []Task{{ID: "t", Slot: 1, Addrs: []string{"10.0.1.5"}, Running: true, Current: true, Since: at(0)}}, instances: []Instance{passing(6)}, want: Waiting},
				{at: 111, tasks: []Task{{ID: "t", Slot: 1, Addrs: []string{"10.0.1.5"}, Running: true, Current: true, Since: at(0)}}, instances: []Instance{passing(6)}, want: Converged},
			},
		},
		{
			name: "the previous version going critical while it is replaced is a wait, not a failure",
			opts: Options{Service: "s", MinHealthy: time.Second},
			steps: []step{
				{at: 0, tasks: []Task{oldRunning, newTask}, instances: []Instance{inst("old-a", "10.0.1.4", Passing, 3), passing(6)}, want: Waiting},
				{at: 5, tasks: []Task{oldRunning, newTask}, instances: []Instance{inst("old-a", "10.0.1.4", Critical, 4), passing(6)}, want: Waiting, reason: "old-a (previous version) is critical"},
			},
		},
		{
			name: "stale instance of a stopped task: waited for, deregistered after its TTL, then converged",
			opts: Options{Service: "s", MinHealthy: time.Second},
			steps: []step{
				{at: 0, tasks: []Task{oldGone, newTask}, instances: []Instance{{ID: "old-a", Address: "10.0.1.4", Status: Passing, TTL: 15 * time.Second}, passing(6)}, want: Waiting},
				{at: 5, tasks: []Task{oldGone, newTask}, instances: []Instance{{ID: "old-a", Address: "10.0.1.4", Status: Passing, TTL: 15 * time.Second}, passing(6)}, want: Waiting,
					reason: "1 instance of tasks that no longer run still registered: old-a", dereg: []string{}},
				{at: 15, tasks: []Task{oldGone, newTask}, instances: []Instance{{ID: "old-a", Address: "10.0.1.4", Status: Critical, TTL: 15 * time.Second}, passing(6)}, want: Waiting, dereg: []string{"old-a"}},
				{at: 16, tasks: []Task{oldGone, newTask}, instances: []Instance{passing(6)}, want: Converged},
			},
		},
		{
			name: "stale time counts from the task's stop",
			opts: Options{Service: "s", MinHealthy: time.Second, StaleAfter: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{{ID: "old1", Slot: 1, Addrs: []string{"10.0.1.4"}, Since: at(-20)}, newTask},
					instances: []Instance{inst("old-a", "10.0.1.4", Passing, 3), passing(6)}, want: Waiting, dereg: []string{"old-a"}},
			},
		},
		{
			name: "older registration at a running task's address is stale",
			opts: Options{Service: "s", MinHealthy: time.Second, StaleAfter: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{{ID: "older", Address: "10.0.1.5", Status: Passing, CreateIndex: 1}, {ID: "newer", Address: "10.0.1.5", Status: Passing, CreateIndex: 9}}, want: Waiting},
				{at: 11, tasks: []Task{newTask}, instances: []Instance{{ID: "older", Address: "10.0.1.5", Status: Passing, CreateIndex: 1}, {ID: "newer", Address: "10.0.1.5", Status: Passing, CreateIndex: 9}}, want: Waiting, reason: "still registered: older", dereg: []string{"older"}},
				{at: 12, tasks: []Task{newTask}, instances: []Instance{{ID: "newer", Address: "10.0.1.5", Status: Passing, CreateIndex: 9}}, want: Converged},
			},
		},
		{
			name: "instances at addresses no task ever had are foreign: reported, never removed, not in the way",
			opts: Options{Service: "s", MinHealthy: time.Second},
			steps: []step{
				{at: 0, tasks: []Task{newTask}, instances: []Instance{passing(6), inst("laptop", "192.168.1.20", Critical, 2)}, want: Waiting},
				{at: 60, tasks: []Task{newTask}, instances: []Instance{passing(6), inst("laptop", "192.168.1.20", Critical, 2)}, want: Converged, dereg: []string{}, foreign: []string{"laptop"}},
			},
		},
		{
			// Seen on the demo stack under load: a task stayed in
			// "starting" for 20 s while its process had registered at
			// once; counted as stale from the task's state timestamp, its
			// live instance was deregistered, and the rollback that
			// followed took every instance out of the gateway's set.
			name: "an instance of a task still starting is not stale: never deregistered, judged once the task runs",
			opts: Options{Service: "s", MinHealthy: 5 * time.Second, StaleAfter: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{{ID: "new1", Slot: 1, Addrs: []string{"10.0.1.5"}, Pending: true, Current: true, Since: at(-25)}},
					instances: []Instance{passing(6)}, want: Waiting, reason: "greeter-a of task new1 (starting or stopping)", dereg: []string{}, foreign: []string{}},
				{at: 20, tasks: []Task{{ID: "new1", Slot: 1, Addrs: []string{"10.0.1.5"}, Pending: true, Current: true, Since: at(-25)}},
					instances: []Instance{passing(6)}, want: Waiting, dereg: []string{}},
				// Running now, and observed passing since t=0: that run
				// counts for min-healthy.
				{at: 21, tasks: []Task{{ID: "new1", Slot: 1, Addrs: []string{"10.0.1.5"}, Running: true, Current: true, Since: at(21)}},
					instances: []Instance{passing(6)}, want: Converged, dereg: []string{}},
			},
		},
		{
			name: "an instance of a task told to stop but still running is not stale until the task has stopped",
			opts: Options{Service: "s", MinHealthy: time.Second, StaleAfter: 10 * time.Second},
			steps: []step{
				{at: 0, tasks: []Task{{ID: "old1", Slot: 1, Addrs: []string{"10.0.1.4"}, Pending: true, Since: at(-600)}, newTask},
					instances: []Instance{inst("old-a", "10.0.1.4", Passing, 3), passing(6)}, want: Waiting, dereg: []string{}},
				{at: 30, tasks: []Task{{ID: "old1", Slot: 1, Addrs: []string{"10.0.1.4"}, Pending: true, Since: at(-600)}, newTask},
					instances: []Instance{inst("old-a", "10.0.1.4", Passing, 3), passing(6)}, want: Waiting, dereg: []string{}},
				// Stopped at 31: stale from then, deregistered 10 s later.
				{at: 35, tasks: []Task{{ID: "old1", Slot: 1, Addrs: []string{"10.0.1.4"}, Since: at(31)}, newTask},
					instances: []Instance{inst("old-a", "10.0.1.4", Passing, 3), passing(6)}, want: Waiting, reason: "still registered: old-a", dereg: []string{}},
				{at: 41, tasks: []Task{{ID: "old1", Slot: 1, Addrs: []string{"10.0.1.4"}, Since: at(31)}, newTask},
					instances: []Instance{inst("old-a", "10.0.1.4", Passing, 3), passing(6)}, want: Waiting, dereg: []string{"old-a"}},
			},
		},
		{
			name:  "nothing running: the gate holds nothing against it",
			opts:  Options{Service: "s"},
			steps: []step{{at: 0, tasks: []Task{oldGone}, want: Converged}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(tt.opts)
			for i, s := range tt.steps {
				d := g.Observe(Observation{At: at(s.at), Tasks: s.tasks, Instances: s.instances})
				if d.Verdict != s.want {
					t.Fatalf("step %d (t=%gs): verdict %s (%s), want %s", i, s.at, d.Verdict, d.Reason, s.want)
				}
				if s.reason != "" && !strings.Contains(d.Reason, s.reason) {
					t.Errorf("step %d: reason %q, want it to contain %q", i, d.Reason, s.reason)
				}
				if s.dereg != nil {
					if got := ids(d.Deregister); strings.Join(got, ",") != strings.Join(s.dereg, ",") {
						t.Errorf("step %d: deregister %v, want %v", i, got, s.dereg)
					}
				}
				if s.foreign != nil {
					if got := ids(d.Foreign); strings.Join(got, ",") != strings.Join(s.foreign, ",") {
						t.Errorf("step %d: foreign %v, want %v", i, got, s.foreign)
					}
				}
			}
		})
	}
}

func ids(ins []Instance) []string {
	out := []string{}
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

func TestTimings(t *testing.T) {
	tests := []struct {
		name                  string
		minFlag, deadlineFlag time.Duration
		ttl                   time.Duration
		wantMin, wantDeadline time.Duration
	}{
		{"no TTL known", 0, 0, 0, 10 * time.Second, 30 * time.Second},
		{"demo TTL 15s", 0, 0, 15 * time.Second, 15 * time.Second, 30 * time.Second},
		{"go-micro v2 default TTL 90s", 0, 0, 90 * time.Second, 90 * time.Second, 180 * time.Second},
		{"flags win", 5 * time.Second, 12 * time.Second, 90 * time.Second, 5 * time.Second, 12 * time.Second},
		{"a long min-healthy leaves time to register", 40 * time.Second, 0, 0, 40 * time.Second, 55 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(Options{MinHealthy: tt.minFlag, HealthyDeadline: tt.deadlineFlag})
			var ins []Instance
			if tt.ttl > 0 {
				ins = []Instance{{ID: "a", TTL: tt.ttl}}
			}
			m, d := g.Timings(ins)
			if m != tt.wantMin || d != tt.wantDeadline {
				t.Errorf("Timings = %s, %s; want %s, %s", m, d, tt.wantMin, tt.wantDeadline)
			}
		})
	}
}
