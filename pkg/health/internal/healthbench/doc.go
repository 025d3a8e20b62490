// Package healthbench measures `microctl health` over a large catalog
// (500 services, 2,000 instances by default) against the obvious loop
// (`consul catalog services`, then one /v1/health/service/:name per
// service): HTTP requests made and wall time, side by side, in one run.
//
// It is a Go benchmark that starts a private Consul agent:
//
//	eval "$(scripts/testenv.sh env)"
//	go test -run '^$' -bench Health -benchtime 5x ./pkg/health/internal/healthbench/
//
// Results and the exact command are in docs/benchmarks.md.
package healthbench
