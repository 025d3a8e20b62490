package bench

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// WriteHDR writes the latency histogram as HdrHistogram's percentile
// distribution text (.hgrm, values in milliseconds), the format wrk2
// prints and HdrHistogram's plotFiles.html reads. With -R it is the
// corrected histogram.
func WriteHDR(w io.Writer, res *Result) error {
	if res.hist == nil || res.hist.TotalCount() == 0 {
		return fmt.Errorf("no latency recorded: the run completed no request")
	}
	_, err := res.hist.PercentilesPrint(w, 5, 1000)
	return err
}

// FormatUS renders microseconds for people: 453µs, 1.05ms, 2.49s.
func FormatUS(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// plotPoint is one point of a percentile curve.
type plotPoint struct {
	x float64 // log10(1/(1-q)): 0 at p0, 1 at p90, 2 at p99...
	v float64 // latency, µs
}

// percentileCurve samples h along the log-scaled percentile axis up to
// the resolution its count supports.
func percentileCurve(h *hdrhistogram.Histogram) []plotPoint {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	xmax := math.Min(6, math.Max(1, math.Log10(float64(n))))
	var pts []plotPoint
	const steps = 240
	for i := 0; i <= steps; i++ {
		x := xmax * float64(i) / steps
		q := 100 * (1 - math.Pow(10, -x))
		pts = append(pts, plotPoint{x, float64(h.ValueAtQuantile(q))})
	}
	pts = append(pts, plotPoint{xmax, float64(h.Max())})
	return pts
}

// svgPlot draws the percentile curves as inline SVG: no script, no outside
// assets, readable in any browser or image viewer.
func svgPlot(curves map[string][]plotPoint) template.HTML {
	const W, H, L, R, T, B = 760.0, 380.0, 70.0, 20.0, 20.0, 50.0
	var xmax, vmax float64
	for _, pts := range curves {
		for _, p := range pts {
			xmax = math.Max(xmax, p.x)
			vmax = math.Max(vmax, p.v)
		}
	}
	if xmax == 0 || vmax == 0 {
		return ""
	}
	vtop := niceCeil(vmax)
	px := func(x float64) float64 { return L + (W-L-R)*x/xmax }
	py := func(v float64) float64 { return H - B - (H-T-B)*v/vtop }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%g" height="%g" fill="#fff"/>`, W, H)
	// Grid: percentiles on x, latency on y.
	for x := 0.0; x <= xmax+1e-9; x++ {
		label := "0%"
		if x > 0 {
			label = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", 100*(1-math.Pow(10, -x))), "0"), ".") + "%"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`, px(x), T, px(x), H-B)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`, px(x), H-B+16, label)
	}
	for i := 0; i <= 5; i++ {
		v := vtop * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`, L, py(v), W-R, py(v))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`, L-6, py(v)+4, FormatUS(v))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">percentile</text>`, L+(W-L-R)/2, H-12)
	colors := map[string]string{"corrected": "#c0392b", "latency": "#2c3e80", "uncorrected": "#2c3e80"}
	names := make([]string, 0, len(curves))
	for name := range curves {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		var path strings.Builder
		for j, p := range curves[name] {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, px(p.x), py(p.v))
		}
		c := colors[name]
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.TrimSpace(path.String()), c)
		fmt.Fprintf(&b, `<rect x="%g" y="%d" width="12" height="3" fill="%s"/><text x="%g" y="%d">%s</text>`, L+12, 30+18*i, c, L+30, 35+18*i, name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"us": FormatUS, "sloValue": FormatSLOValue, "status": StatusSummary}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>microctl bench: {{.Title}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0 0 1.5em}
td,th{padding:3px 12px;text-align:left;border-bottom:1px solid #eee}
th{background:#f4f4f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:90%}
</style></head><body>
<h1>microctl bench</h1>
<p>{{.Title}}, {{.When}}{{if .R.Interrupted}} <strong>(interrupted)</strong>{{end}}</p>
<h2>Settings</h2>
<table>
<tr><th>target</th><td>{{if .R.URL}}{{.R.URL}}{{else}}{{.R.Mode}}{{end}}</td></tr>
<tr><th>addresses</th><td>{{range $i, $t := .R.Targets}}{{if $i}}, {{end}}{{$t}}{{end}}</td></tr>
<tr><th>engine</th><td>{{.R.Engine}}, {{.R.Settings.Loops}} loops</td></tr>
<tr><th>connections</th><td>{{.R.Settings.Connections}}, pipeline {{.R.Settings.Pipeline}}</td></tr>
{{if .R.Settings.DurationSeconds}}<tr><th>duration</th><td>{{.R.Settings.DurationSeconds}}s</td></tr>{{end}}
{{if .R.Settings.Requests}}<tr><th>requests</th><td>{{.R.Settings.Requests}}</td></tr>{{end}}
{{if .R.Settings.Rate}}<tr><th>rate</th><td>{{.R.Settings.Rate}} requests/s</td></tr>{{end}}
<tr><th>timeout</th><td>{{.R.Settings.TimeoutSeconds}}s</td></tr>
{{if .R.Settings.Method}}<tr><th>method</th><td>{{.R.Settings.Method}}</td></tr>{{end}}
{{range .R.Settings.Headers}}<tr><th>header</th><td>{{.}}</td></tr>{{end}}
<tr><th>body</th><td>{{.R.Settings.BodyBytes}} bytes</td></tr>
</table>
<h2>Results</h2>
<table>
<tr><th>elapsed</th><td class="n">{{printf "%.2f" .R.ElapsedSeconds}} s</td></tr>
<tr><th>requests</th><td class="n">{{.R.Requests}} ({{printf "%.1f" .R.RequestsPerSec}}/s)</td></tr>
<tr><th>sent</th><td class="n">{{.R.Sent}}</td></tr>
{{if .R.Rate}}<tr><th>rate achieved</th><td class="n">{{printf "%.1f" .R.Rate.Achieved}}/s of {{.R.Rate.Target}}/s ({{printf "%.4f" .R.Rate.Ratio}})</td></tr>{{end}}
{{if .R.TLS}}<tr><th>tls</th><td>{{.R.TLS.Version}}, {{.R.TLS.CipherSuite}}, alpn {{.R.TLS.ALPN}}; {{.R.TLS.Handshakes}} handshakes ({{.R.TLS.Resumed}} resumed); connect+handshake p50 {{us .R.TLS.Connect.P50US}}, p99 {{us .R.TLS.Connect.P99US}}</td></tr>{{end}}
<tr><th>read</th><td class="n">{{.R.BytesRead}} bytes ({{printf "%.0f" .R.BytesPerSec}}/s)</td></tr>
<tr><th>written</th><td class="n">{{.R.BytesWritten}} bytes</td></tr>
</table>
<h2>Latency</h2>
<table>
<tr><th></th><th>p50</th><th>p75</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th><th>stdev</th></tr>
{{range .Lat}}<tr><th>{{.Name}}</th><td class="n">{{us .L.P50US}}</td><td class="n">{{us .L.P75US}}</td><td class="n">{{us .L.P90US}}</td><td class="n">{{us .L.P99US}}</td><td class="n">{{us .L.P999US}}</td><td class="n">{{us .L.MaxUS}}</td><td class="n">{{us .L.MeanUS}}</td><td class="n">{{us .L.StdevUS}}</td></tr>
{{end}}</table>
<div style="display:flex;flex-wrap:wrap;gap:1em">{{.Plot}}{{.RatePlot}}</div>
{{if .R.LatencyUncorrected}}<p class="note">corrected: measured from when each request was due at the -R rate (coordinated omission corrected, as wrk2); uncorrected: from when it was sent.</p>{{end}}
{{if .Parts}}<h2>Workers</h2>
<table><tr><th>worker</th><th>connections</th><th>rate</th><th>responses</th><th>req/s</th><th>p50</th><th>p99</th><th>max</th><th>errors</th></tr>
{{range .Parts}}<tr><td>{{.Name}}</td><td class="n">{{.Connections}}</td><td class="n">{{if .Rate}}{{.Rate}}{{else}}-{{end}}</td><td class="n">{{.Requests}}</td><td class="n">{{printf "%.1f" .RequestsPerSec}}</td><td class="n">{{us .Latency.P50US}}</td><td class="n">{{us .Latency.P99US}}</td><td class="n">{{us .Latency.MaxUS}}</td><td class="n">{{.Errors}}</td></tr>{{end}}
</table>{{end}}
{{if .R.ByTarget}}<h2>Targets</h2>
<table><tr><th>target</th><th>sent</th><th>responses</th><th>errors</th><th>status</th><th>p50</th><th>p99</th><th>max</th></tr>
{{range .R.ByTarget}}<tr><td>{{.Method}} {{.URL}}</td><td class="n">{{.Sent}}</td><td class="n">{{.Requests}}</td><td class="n">{{.Errors}}</td><td>{{status .Status}}</td><td class="n">{{us .Latency.P50US}}</td><td class="n">{{us .Latency.P99US}}</td><td class="n">{{us .Latency.MaxUS}}</td></tr>{{end}}
</table>{{end}}
{{if .Status}}<h2>Status codes</h2>
<table><tr><th>status</th><th>responses</th></tr>
{{range .Status}}<tr><td>{{.Code}}</td><td class="n">{{.N}}</td></tr>{{end}}
</table>{{end}}
{{if .R.SLO}}<h2>Limits (--slo)</h2>
<table><tr><th>limit</th><th>measured</th><th>verdict</th></tr>
{{range .R.SLO}}<tr><td>{{.Limit}}</td><td class="n">{{sloValue .}}</td><td>{{if .Pass}}pass{{else}}<strong>FAIL</strong>{{end}}</td></tr>{{end}}
</table>
{{if .R.SLOAbort}}<p class="note">stopped early (--slo-abort): {{.R.SLOAbort}}</p>{{end}}{{end}}
<h2>Errors</h2>
<table>
<tr><th>connect</th><th>read</th><th>write</th><th>timeout</th><th>parse</th><th>closed</th><th>tls</th><th>total</th></tr>
<tr><td class="n">{{.R.Errors.Connect}}</td><td class="n">{{.R.Errors.Read}}</td><td class="n">{{.R.Errors.Write}}</td><td class="n">{{.R.Errors.Timeout}}</td><td class="n">{{.R.Errors.Parse}}</td><td class="n">{{.R.Errors.Closed}}</td><td class="n">{{.R.Errors.TLS}}</td><td class="n">{{.R.Errors.Total}}</td></tr>
</table>
{{range $k, $v := .R.Errors.First}}<p class="note">first {{$k}} error: {{$v}}</p>{{end}}
</body></html>
`))

// WriteReport writes a self-contained HTML page with the run's settings,
// results and latency percentile plot.
func WriteReport(w io.Writer, res *Result, when time.Time) error {
	type lat struct {
		Name string
		L    Latency
	}
	type status struct {
		Code string
		N    uint64
	}
	data := struct {
		R        *Result
		Title    string
		When     string
		Lat      []lat
		Plot     template.HTML
		RatePlot template.HTML
		Status   []status
		Parts    []Part
	}{R: res, When: when.Format(time.RFC1123), Parts: res.parts}
	data.Title = res.URL
	if data.Title == "" {
		data.Title = strings.Join(res.Targets, ", ")
	}
	curves := map[string][]plotPoint{}
	if res.LatencyUncorrected != nil {
		data.Lat = []lat{{"corrected", res.Latency}, {"uncorrected", *res.LatencyUncorrected}}
		curves["corrected"] = percentileCurve(res.hist)
		curves["uncorrected"] = percentileCurve(res.histUncorrected)
	} else {
		data.Lat = []lat{{"latency", res.Latency}}
		curves["latency"] = percentileCurve(res.hist)
	}
	if res.hist != nil && res.hist.TotalCount() > 0 {
		data.Plot = svgPlot(curves)
	}
	data.RatePlot = svgTimeline(res.Timeline)
	for code, n := range res.Status {
		data.Status = append(data.Status, status{code, n})
	}
	sort.Slice(data.Status, func(i, j int) bool { return data.Status[i].Code < data.Status[j].Code })
	return reportTmpl.Execute(w, data)
}

// FormatSLOValue renders a limit's measured value in its unit.
func FormatSLOValue(s SLOResult) string {
	if s.Measured < 0 {
		return "none measured"
	}
	switch s.Unit {
	case "us":
		return FormatUS(s.Measured)
	case "percent":
		return fmt.Sprintf("%.4g%%", s.Measured)
	case "rps":
		return fmt.Sprintf("%.1f/s", s.Measured)
	}
	return fmt.Sprintf("%.0f", s.Measured)
}

// svgTimeline plots, per second, the rate the schedule asked for, the
// rate sent and the rate answered (rate mode only).
func svgTimeline(pts []TimelinePoint) template.HTML {
	if len(pts) < 2 {
		return ""
	}
	const W, H, L, R, T, B = 760.0, 380.0, 70.0, 20.0, 20.0, 50.0
	var vmax float64
	for _, p := range pts {
		vmax = math.Max(vmax, math.Max(p.TargetRPS, math.Max(p.SentRPS, p.AchievedRPS)))
	}
	if vmax == 0 {
		return ""
	}
	vtop := niceCeil(vmax)
	xmax := float64(len(pts))
	px := func(x float64) float64 { return L + (W-L-R)*x/xmax }
	py := func(v float64) float64 { return H - B - (H-T-B)*v/vtop }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%g" height="%g" fill="#fff"/>`, W, H)
	step := math.Max(1, niceCeil(xmax/10))
	for x := 0.0; x <= xmax+1e-9; x += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`, px(x), T, px(x), H-B)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%gs</text>`, px(x), H-B+16, x)
	}
	for i := 0; i <= 5; i++ {
		v := vtop * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`, L, py(v), W-R, py(v))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%g/s</text>`, L-6, py(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">time</text>`, L+(W-L-R)/2, H-12)
	series := []struct {
		name, color, dash string
		v                 func(TimelinePoint) float64
	}{
		{"target", "#888", ` stroke-dasharray="6 4"`, func(p TimelinePoint) float64 { return p.TargetRPS }},
		{"sent", "#2c3e80", "", func(p TimelinePoint) float64 { return p.SentRPS }},
		{"answered", "#c0392b", "", func(p TimelinePoint) float64 { return p.AchievedRPS }},
	}
	for i, s := range series {
		var path strings.Builder
		for j, p := range pts {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			// Each count is the mean over its second: drawn at its middle.
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, px(float64(p.Second)+0.5), py(s.v(p)))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.TrimSpace(path.String()), s.color, s.dash)
		fmt.Fprintf(&b, `<rect x="%g" y="%d" width="12" height="3" fill="%s"/><text x="%g" y="%d">%s</text>`, L+12, 30+18*i, s.color, L+30, 35+18*i, s.name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// StatusSummary renders status counts on one line: "200:95 503:5".
func StatusSummary(m map[string]uint64) string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s:%d", c, m[c])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
