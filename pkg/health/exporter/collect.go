package exporter

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// Metric names and labels are part of microctl's interface (dashboards and
// alert rules depend on them): add, never rename.
var (
	instanceLabels = []string{"service", "instance", "node"}
	checkLabels    = []string{"service", "instance", "node", "check", "check_type"}

	descInstanceStatus = prometheus.NewDesc("microctl_health_instance_status",
		"1 for the instance's current status (its worst check, its node's included), 0 for the others.",
		append(slices.Clone(instanceLabels), "status"), nil)
	descInstanceTTL = prometheus.NewDesc("microctl_health_instance_ttl_seconds",
		"The instance's TTL (go-micro's RegisterTTL), when known: from its Meta or from --ttl (source label). Consul returns no TTL.",
		append(slices.Clone(instanceLabels), "source"), nil)
	descInstanceInterval = prometheus.NewDesc("microctl_health_instance_interval_seconds",
		"The instance's heartbeat interval (go-micro's RegisterInterval), when known: from its Meta or from --interval.",
		append(slices.Clone(instanceLabels), "source"), nil)
	descCheckStatus = prometheus.NewDesc("microctl_health_check_status",
		"1 for the check's current status, 0 for the others.",
		append(slices.Clone(checkLabels), "status"), nil)
	descCheckSeconds = prometheus.NewDesc("microctl_health_check_state_seconds",
		"Seconds the check has been in its current status, as seen by the exporter; a lower bound when microctl_health_check_state_before_start is 1.",
		checkLabels, nil)
	descCheckBefore = prometheus.NewDesc("microctl_health_check_state_before_start",
		"1 when the current status began before the exporter started: Consul records no time of change, so state_seconds counts from the start.",
		checkLabels, nil)
	descCheckTransitions = prometheus.NewDesc("microctl_health_check_transitions_total",
		"Status changes of the check seen since the exporter started (or since the check appeared).",
		checkLabels, nil)
	descCheckFlapping = prometheus.NewDesc("microctl_health_check_flapping",
		"1 while the check has changed status at least the flapping threshold's number of times within its window.",
		checkLabels, nil)
	descNodeCheckStatus = prometheus.NewDesc("microctl_health_node_check_status",
		"1 for a node check's current status (serfHealth, node maintenance), 0 for the others; it counts for every instance on the node.",
		[]string{"node", "check", "check_type", "status"}, nil)
	descServiceInstances = prometheus.NewDesc("microctl_health_service_instances",
		"Instances of the service by status.",
		[]string{"service", "status"}, nil)
	descRequests = prometheus.NewDesc("microctl_consul_requests_total",
		"HTTP requests the exporter made to Consul, by what they were for: catalog (full reads), watch_checks and watch_services (blocking queries). Scrapes make none.",
		[]string{"query"}, nil)
	descErrors = prometheus.NewDesc("microctl_consul_request_errors_total",
		"Consul requests that failed (each is retried with back-off).", nil, nil)
	descReady = prometheus.NewDesc("microctl_health_exporter_ready",
		"1 once the initial catalog read is done; before that no health metric is exported.", nil, nil)
	descUpdated = prometheus.NewDesc("microctl_health_exporter_last_change_timestamp_seconds",
		"Unix time of the last change seen (or of the initial read).", nil, nil)

	statuses = []string{registry.StatusPassing, registry.StatusWarning, registry.StatusCritical}
)

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstanceStatus, descInstanceTTL, descInstanceInterval, descCheckStatus,
		descCheckSeconds, descCheckBefore, descCheckTransitions, descCheckFlapping, descNodeCheckStatus,
		descServiceInstances, descRequests, descErrors, descReady, descUpdated} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It reads only what the last
// responses held: a scrape never makes a Consul request.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	st := e.src.state()
	for _, q := range []string{"catalog", "watch_checks", "watch_services"} {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, st.requests[q], q)
	}
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, st.errors)

	e.mu.Lock()
	defer e.mu.Unlock()
	ready := e.ready && st.cat != nil
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(ready))
	if !ready {
		return
	}
	ch <- prometheus.MustNewConstMetric(descUpdated, prometheus.GaugeValue, float64(e.updated.UnixMilli())/1000)
	now := e.opts.Now()

	own, onNode := map[string][]registry.Check{}, map[string][]registry.Check{}
	for _, c := range st.checks {
		if c.ServiceID == "" {
			onNode[c.Node] = append(onNode[c.Node], c)
		} else {
			own[c.Node+"/"+c.ServiceID] = append(own[c.Node+"/"+c.ServiceID], c)
		}
	}
	counts := map[string]*health.Counts{}
	watchedNodes := map[string]bool{}
	for _, in := range st.cat.Instances {
		if len(e.opts.Services) > 0 && !slices.Contains(e.opts.Services, in.Service) {
			continue
		}
		watchedNodes[in.Node] = true
		// Status and timing only: decoding go-micro's tags (zlib) for
		// every instance on every scrape would cost more than all the rest.
		status := registry.StatusPassing
		for _, c := range own[in.Key()] {
			status = health.Worst(status, c.Status)
		}
		for _, c := range onNode[in.Node] {
			status = health.Worst(status, c.Status)
		}
		if counts[in.Service] == nil {
			counts[in.Service] = &health.Counts{}
		}
		counts[in.Service].Add(status)
		il := []string{in.Service, in.ID, in.Node}
		for _, s := range statuses {
			ch <- prometheus.MustNewConstMetric(descInstanceStatus, prometheus.GaugeValue, b2f(s == status), append(il, s)...)
		}
		timing, _ := health.TimingOf(in.Meta, e.opts.Defaults)
		if timing.TTL > 0 {
			ch <- prometheus.MustNewConstMetric(descInstanceTTL, prometheus.GaugeValue, timing.TTL.Seconds(), append(il, string(timing.TTLSource))...)
		}
		if timing.Interval > 0 {
			ch <- prometheus.MustNewConstMetric(descInstanceInterval, prometheus.GaugeValue, timing.Interval.Seconds(), append(il, string(timing.IntervalSource))...)
		}
		for _, c := range own[in.Key()] {
			cl := []string{in.Service, in.ID, in.Node, c.CheckID, health.KindOf(c)}
			for _, s := range statuses {
				ch <- prometheus.MustNewConstMetric(descCheckStatus, prometheus.GaugeValue, b2f(s == c.Status), append(cl, s)...)
			}
			secs, before, transitions, flapping := e.history(c, now)
			ch <- prometheus.MustNewConstMetric(descCheckSeconds, prometheus.GaugeValue, secs, cl...)
			ch <- prometheus.MustNewConstMetric(descCheckBefore, prometheus.GaugeValue, b2f(before), cl...)
			ch <- prometheus.MustNewConstMetric(descCheckTransitions, prometheus.CounterValue, float64(transitions), cl...)
			ch <- prometheus.MustNewConstMetric(descCheckFlapping, prometheus.GaugeValue, b2f(flapping), cl...)
		}
	}
	for node, cs := range onNode {
		if !watchedNodes[node] {
			continue
		}
		for _, c := range cs {
			for _, s := range statuses {
				ch <- prometheus.MustNewConstMetric(descNodeCheckStatus, prometheus.GaugeValue, b2f(s == c.Status), node, c.CheckID, health.KindOf(c), s)
			}
		}
	}
	for svc, n := range counts {
		ch <- prometheus.MustNewConstMetric(descServiceInstances, prometheus.GaugeValue, float64(n.Passing), svc, registry.StatusPassing)
		ch <- prometheus.MustNewConstMetric(descServiceInstances, prometheus.GaugeValue, float64(n.Warning), svc, registry.StatusWarning)
		ch <- prometheus.MustNewConstMetric(descServiceInstances, prometheus.GaugeValue, float64(n.Critical), svc, registry.StatusCritical)
	}
}

// history returns the check's time in state, whether that state began
// before the exporter started, its transitions, and whether it is
// flapping. Callers hold e.mu.
func (e *Exporter) history(c registry.Check, now time.Time) (float64, bool, int, bool) {
	t := e.checks[c.Key()]
	switch {
	case t == nil:
		// Not seen to change since the start: it has been in this
		// state at least that long.
		return now.Sub(e.start).Seconds(), true, 0, false
	case t.status != c.Status:
		// The response is newer than the last event: the change is
		// being delivered right now.
		return 0, false, t.transitions, e.flapping(t, now)
	}
	return now.Sub(t.since).Seconds(), t.beforeStart, t.transitions, e.flapping(t, now)
}

func (e *Exporter) flapping(t *track, now time.Time) bool {
	cut := now.Add(-e.opts.FlapWindow)
	i := 0
	for i < len(t.recent) && !t.recent[i].After(cut) {
		i++
	}
	t.recent = t.recent[i:]
	return len(t.recent) >= e.opts.FlapTransitions
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
