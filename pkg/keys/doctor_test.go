package keys

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

func TestDoctorProbe(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	s := newStore(t, c, clk)
	statuses := func() map[string]doctor.Result {
		out := map[string]doctor.Result{}
		for _, r := range Probe(s)(ctx) {
			out[r.Check] = r
		}
		return out
	}
	want := func(step string, got map[string]doctor.Result, ring, age, next doctor.Status) {
		t.Helper()
		if got["keys.ring"].Status != ring || got["keys.age"].Status != age || got["keys.next"].Status != next {
			t.Errorf("%s: %+v", step, got)
		}
	}
	want("no ring", statuses(), doctor.Skip, doctor.Skip, doctor.Skip)
	if _, err := s.Init(ctx, InitOptions{RotationPeriod: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	want("fresh ring", statuses(), doctor.OK, doctor.OK, doctor.OK)
	clk.Advance(25 * time.Hour)
	got := statuses()
	want("old key", got, doctor.OK, doctor.Warn, doctor.OK)
	if !strings.Contains(got["keys.age"].Detail, "1d1h old (rotation period 1d0h)") {
		t.Errorf("age detail %q", got["keys.age"].Detail)
	}
	if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	want("key past retire_after", statuses(), doctor.Warn, doctor.OK, doctor.OK)
	if _, err := c.API.KV().Put(&api.KVPair{Key: s.Path() + "/junk", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	got = statuses()
	want("corrupt value", got, doctor.Fail, doctor.OK, doctor.OK)
	if !strings.Contains(got["keys.ring"].Detail, s.Path()+"/junk") {
		t.Errorf("ring detail %q", got["keys.ring"].Detail)
	}
	// Through Doctor, as cmd/doctor runs it.
	res := doctor.Run(ctx, Doctor(func() (*registry.Client, error) { return c, nil }, s.Path())...).Results
	if len(res) != 3+len(productionCheckNames) || res[0].Status != doctor.Fail {
		t.Errorf("Doctor: %+v", res)
	}
}
