# Load, with honest latency. `microctl bench` with no URL starts the
# built-in target (microctl serve) on a free loopback port and benchmarks
# it: the first thing a new user runs. The HTML report (settings, results,
# latency percentile plot) and the HdrHistogram text go to $DEMO_OUT.
type run >/dev/null 2>&1 || run() { echo "\$ microctl $*"; "$MICROCTL" "$@"; }
run bench -d 3s -c 20 --report "$DEMO_OUT/bench.html" --hdr "$DEMO_OUT/bench.hgrm"

# A constant rate: latency measured from when each request was due
# (coordinated omission corrected, as wrk2), both figures shown.
run bench -d 2s -c 10 -R 5000 --report "$DEMO_OUT/bench-rate.html"

# Through the stack's API gateway (step 30) with a token signed by the key
# ring (step 60): a bare --jwt signs one with the ring's current key, in the
# stack's Consul.
if [ -s "$DEMO_OUT/stack-gateway-addr" ] && [ -s "$DEMO_OUT/stack-consul-addr" ]; then
	export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")
	GATEWAY=$(cat "$DEMO_OUT/stack-gateway-addr")
	run bench -d 3s -c 20 --jwt --report "$DEMO_OUT/bench-gateway.html" "http://$GATEWAY/"
else
	echo "(no deployed stack: skipping the bench through the gateway with --jwt)"
fi
