// Package spread runs a load test from several machines at once: N
// workers, each a one-shot task of one Swarm service, take their
// share of the connections and of the rate, wait at a barrier in Consul
// KV, run together, and write their results (HdrHistogram included) back
// to KV, where the coordinator merges them exactly (bench.Merge).
//
// The KV layout under the run's prefix:
//
//	spec          the plan: one WorkerSpec per slot
//	claim/<i>     a worker took slot i (create-only, cas=0); its identity
//	start         the barrier: when every slot is claimed, the wall-clock
//	              time at which all workers begin
//	result/<i>    slot i's result (bench.Result.MarshalWire)
//	error/<i>     slot i failed before it had a result, and why
//
// Nothing here prints; the coordinator reports through a callback.
package spread

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/microctl/microctl/pkg/bench"
)

// Split divides total into n shares that differ by at most one and sum to
// total exactly: the first total%n shares get the extra one.
func Split(total, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = total / n
		if i < total%n {
			out[i]++
		}
	}
	return out
}

// SplitRate divides a rate into n shares that sum to it. A whole rate is
// split in whole requests/s (as Split); a fractional one in equal parts,
// the last taking what rounding left.
func SplitRate(rate float64, n int) []float64 {
	out := make([]float64, n)
	if rate <= 0 {
		return out
	}
	if rate == math.Trunc(rate) && rate < 1<<53 {
		for i, s := range Split(int(rate), n) {
			out[i] = float64(s)
		}
		return out
	}
	var sum float64
	for i := range n - 1 {
		out[i] = rate / float64(n)
		sum += out[i]
	}
	out[n-1] = rate - sum
	return out
}

// WorkerSpec is what one worker runs: the subset of bench's options that
// makes sense away from the command line (no files: the body travels in
// the spec; no --targets, --service or schedules).
type WorkerSpec struct {
	Slot        int           `json:"slot"`
	URL         string        `json:"url"`
	Connections int           `json:"connections"`
	Rate        float64       `json:"rate,omitempty"`
	Duration    time.Duration `json:"duration"`
	Method      string        `json:"method,omitempty"`
	Headers     []string      `json:"headers,omitempty"` // "Name: value"; may hold a token: the prefix is deleted after the run
	Body        []byte        `json:"body,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	Pipeline    int           `json:"pipeline,omitempty"`
	Loops       int           `json:"loops,omitempty"`
	HTTP2       bool          `json:"http2,omitempty"`
	Streams     int           `json:"streams,omitempty"`
	Insecure    bool          `json:"insecure,omitempty"`
	ServerName  string        `json:"sni,omitempty"`
}

// Options are the bench options of the spec.
func (s WorkerSpec) Options() ([]bench.Option, error) {
	opts := []bench.Option{
		bench.WithURL(s.URL),
		bench.WithConnections(s.Connections),
		bench.WithDuration(s.Duration),
		bench.WithRate(s.Rate),
		bench.WithBody(s.Body),
	}
	if s.Method != "" {
		opts = append(opts, bench.WithMethod(s.Method))
	}
	for _, h := range s.Headers {
		hd, err := bench.ParseHeader(h)
		if err != nil {
			return nil, err
		}
		opts = append(opts, bench.WithHeaders(hd))
	}
	if s.Timeout > 0 {
		opts = append(opts, bench.WithTimeout(s.Timeout))
	}
	if s.Pipeline > 0 {
		opts = append(opts, bench.WithPipeline(s.Pipeline))
	}
	if s.Loops > 0 {
		opts = append(opts, bench.WithLoops(s.Loops))
	}
	if s.HTTP2 {
		opts = append(opts, bench.WithHTTP2(max(1, s.Streams)))
	}
	if s.Insecure || s.ServerName != "" {
		cfg, err := bench.ClientTLS{Insecure: s.Insecure, ServerName: s.ServerName}.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, bench.WithTLSConfig(cfg))
	}
	return opts, nil
}

// Plan is the whole run as the coordinator writes it to KV.
type Plan struct {
	Workers []WorkerSpec `json:"workers"`
	// StartBy is when a worker that has not seen the barrier gives up.
	StartBy time.Time `json:"start_by"`
}

// Divide builds the plan of n workers from one spec holding the totals
// (connections, rate): each worker gets its exact share. A worker needs at
// least one connection, so n may not exceed the connections.
func Divide(total WorkerSpec, n int) (Plan, error) {
	if n < 1 {
		return Plan{}, fmt.Errorf("--workers must be at least 1")
	}
	if total.Connections < n {
		return Plan{}, fmt.Errorf("%d connections cannot be shared by %d workers: each needs at least one", total.Connections, n)
	}
	conns := Split(total.Connections, n)
	rates := SplitRate(total.Rate, n)
	var p Plan
	for i := range n {
		w := total
		w.Slot, w.Connections, w.Rate = i, conns[i], rates[i]
		p.Workers = append(p.Workers, w)
	}
	return p, nil
}

// Identity is what a worker says of itself when it claims a slot.
type Identity struct {
	Slot     int       `json:"slot"`
	Task     string    `json:"task"`     // the Swarm task's name ({{.Task.Name}})
	Node     string    `json:"node"`     // the node's hostname ({{.Node.Hostname}})
	Hostname string    `json:"hostname"` // the container's
	Claimed  time.Time `json:"claimed"`
}

func (id Identity) String() string {
	s := "worker " + strconv.Itoa(id.Slot)
	if id.Task != "" {
		s += " (task " + id.Task
		if id.Node != "" {
			s += " on " + id.Node
		}
		s += ")"
	}
	return s
}

// Start is the barrier's value.
type Start struct {
	At time.Time `json:"at"`
}

// Outcome is a worker's report, next to its result.
type Outcome struct {
	Identity
	Began time.Time `json:"began"` // when its run began (its clock)
}

func keySpec(p string) string          { return p + "spec" }
func keyClaim(p string, i int) string  { return p + "claim/" + strconv.Itoa(i) }
func keyStart(p string) string         { return p + "start" }
func keyResult(p string, i int) string { return p + "result/" + strconv.Itoa(i) }
func keyError(p string, i int) string  { return p + "error/" + strconv.Itoa(i) }
func keyOutcome(p string, i int) string {
	return p + "outcome/" + strconv.Itoa(i)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs go through here
	}
	return b
}
