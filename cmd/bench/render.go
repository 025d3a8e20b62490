package bench

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/bench"
)

func render(o *Options, res *bench.Result) error {
	if o.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, res)
	}
	w := o.IO.Out
	target := res.URL
	if target == "" {
		target = strings.Join(res.Targets, ", ")
	}
	if res.Mode == "tcp" {
		target = "tcp " + target
	}
	fmt.Fprintf(w, "target     %s", target)
	if len(res.Targets) > 1 {
		fmt.Fprintf(w, " (%d addresses)", len(res.Targets))
	}
	fmt.Fprintln(w)
	if res.Settings.Streams > 0 {
		fmt.Fprintf(w, "engine     %s, %d loops, %d connections, %s, %d streams each\n",
			res.Engine, res.Settings.Loops, res.Settings.Connections, res.Settings.Protocol, res.Settings.Streams)
	} else {
		fmt.Fprintf(w, "engine     %s, %d loops, %d connections, pipeline %d\n",
			res.Engine, res.Settings.Loops, res.Settings.Connections, res.Settings.Pipeline)
	}
	fmt.Fprintf(w, "elapsed    %.2fs%s\n", res.ElapsedSeconds, map[bool]string{true: " (interrupted)"}[res.Interrupted])
	fmt.Fprintf(w, "requests   %d (%.1f/s), %d sent\n", res.Requests, res.RequestsPerSec, res.Sent)
	if res.Rate != nil {
		fmt.Fprintf(w, "rate       %.1f/s of %.1f/s asked (%.2f%%)\n", res.Rate.Achieved, res.Rate.Target, 100*res.Rate.Ratio)
	}
	for i, st := range res.Settings.Stages {
		label := "stages"
		if i > 0 {
			label = ""
		}
		if st.From == st.To {
			fmt.Fprintf(w, "%-10s %g/s for %s\n", label, st.From, st.Duration)
		} else {
			fmt.Fprintf(w, "%-10s %g/s to %g/s over %s\n", label, st.From, st.To, st.Duration)
		}
	}
	if t := res.TLS; t != nil {
		fmt.Fprintf(w, "tls        %s, %s, alpn %q; %d handshakes (%d resumed), connect+handshake p50 %s p99 %s\n",
			t.Version, t.CipherSuite, t.ALPN, t.Handshakes, t.Resumed, bench.FormatUS(t.Connect.P50US), bench.FormatUS(t.Connect.P99US))
	}
	fmt.Fprintf(w, "transfer   %s read (%s/s), %s written\n",
		bytesIEC(float64(res.BytesRead)), bytesIEC(res.BytesPerSec), bytesIEC(float64(res.BytesWritten)))
	fmt.Fprintln(w)

	t := cmdutil.NewTable(w, "LATENCY", "P50", "P75", "P90", "P99", "P99.9", "MAX", "MEAN", "STDEV")
	row := func(name string, l bench.Latency) {
		f := bench.FormatUS
		t.Row(name, f(l.P50US), f(l.P75US), f(l.P90US), f(l.P99US), f(l.P999US), f(l.MaxUS), f(l.MeanUS), f(l.StdevUS))
	}
	if res.LatencyUncorrected != nil {
		row("corrected", res.Latency)
		row("uncorrected", *res.LatencyUncorrected)
	} else {
		row("latency", res.Latency)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(res.Settings.Stages) > 0 && len(res.Timeline) > 0 {
		fmt.Fprintln(w)
		tt := cmdutil.NewTable(w, "SECOND", "TARGET/S", "SENT/S", "ANSWERED/S")
		for _, p := range res.Timeline {
			tt.Row(fmt.Sprint(p.Second), fmt.Sprintf("%.1f", p.TargetRPS), fmt.Sprintf("%.1f", p.SentRPS), fmt.Sprintf("%.1f", p.AchievedRPS))
		}
		if err := tt.Flush(); err != nil {
			return err
		}
	}
	if res.Latency.Clamped > 0 {
		fmt.Fprintf(w, "(%d latencies above an hour were recorded as an hour)\n", res.Latency.Clamped)
	}
	if len(res.ByTarget) > 0 {
		fmt.Fprintln(w)
		tt := cmdutil.NewTable(w, "TARGET", "SENT", "RESPONSES", "ERRORS", "STATUS", "P50", "P99", "MAX")
		for _, t := range res.ByTarget {
			tt.Row(t.Method+" "+t.URL, fmt.Sprint(t.Sent), fmt.Sprint(t.Requests), fmt.Sprint(t.Errors), bench.StatusSummary(t.Status),
				bench.FormatUS(t.Latency.P50US), bench.FormatUS(t.Latency.P99US), bench.FormatUS(t.Latency.MaxUS))
		}
		if err := tt.Flush(); err != nil {
			return err
		}
	}
	if len(res.Status) > 0 {
		fmt.Fprintln(w)
		codes := make([]string, 0, len(res.Status))
		for c := range res.Status {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		st := cmdutil.NewTable(w, "STATUS", "RESPONSES")
		for _, c := range codes {
			st.Row(c, fmt.Sprint(res.Status[c]))
		}
		if err := st.Flush(); err != nil {
			return err
		}
	}
	if len(res.SLO) > 0 {
		fmt.Fprintln(w)
		st := cmdutil.NewTable(w, "SLO", "MEASURED", "VERDICT")
		for _, s := range res.SLO {
			verdict := "pass"
			if !s.Pass {
				verdict = "FAIL"
			}
			st.Row(s.Limit, bench.FormatSLOValue(s), verdict)
		}
		if err := st.Flush(); err != nil {
			return err
		}
		if res.SLOAbort != "" {
			fmt.Fprintf(w, "stopped early (--slo-abort): %s\n", res.SLOAbort)
		}
	}
	e := res.Errors
	fmt.Fprintf(w, "\nerrors     %d: connect %d, read %d, write %d, timeout %d, parse %d, closed %d",
		e.Total, e.Connect, e.Read, e.Write, e.Timeout, e.Parse, e.Closed)
	if res.TLS != nil || e.TLS > 0 {
		fmt.Fprintf(w, ", tls %d", e.TLS)
	}
	fmt.Fprintln(w)
	kinds := make([]string, 0, len(e.First))
	for k := range e.First {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  first %s error: %s\n", k, e.First[k])
	}
	return nil
}

// bytesIEC renders a byte count: 13.4 MiB.
func bytesIEC(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// progress redraws one line on stderr while the run goes; only used when
// IOStreams.ProgressEnabled (a terminal, colour not switched off).
type progress struct {
	mu  sync.Mutex
	io  *cmdutil.IOStreams
	out bool
}

func newProgress(io *cmdutil.IOStreams) *progress {
	if !io.ProgressEnabled() {
		return nil
	}
	return &progress{io: io}
}

func (p *progress) update(s bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.io.ErrOut, "\r\033[K%5.1fs  %d requests  %.0f/s  p50 %s  p99 %s  %d errors",
		s.Elapsed.Seconds(), s.Requests, s.RequestsPerSec, bench.FormatUS(s.P50US), bench.FormatUS(s.P99US), s.Errors)
	p.out = true
}

func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out {
		fmt.Fprint(p.io.ErrOut, "\r\033[K")
	}
}
