# The first thing a new user runs: `microctl bench` with no URL starts the
# built-in target (microctl serve) on a free loopback port and benchmarks it.
# The HTML report (settings, results, latency percentile plot) and the
# HdrHistogram text go to $DEMO_OUT.
type run >/dev/null 2>&1 || run() { echo "\$ microctl $*"; "$MICROCTL" "$@"; }
run bench -d 3s -c 20 --report "$DEMO_OUT/bench.html" --hdr "$DEMO_OUT/bench.hgrm"

# A constant rate: latency measured from when each request was due
# (coordinated omission corrected, as wrk2), both figures shown.
run bench -d 2s -c 10 -R 5000 --report "$DEMO_OUT/bench-rate.html"

# Through the example gateway with a token from the key ring, once the
# deploy and key issues have landed: they set GATEWAY_URL (a host-mode port
# on 127.0.0.1) and the --jwt hook (cmd/bench.MintJWT).
if [ -n "${GATEWAY_URL:-}" ]; then
	run bench -d 3s -c 20 --jwt --report "$DEMO_OUT/bench-gateway.html" "$GATEWAY_URL"
else
	echo "(bench through the gateway with --jwt: waits for deploy and keys; set GATEWAY_URL)"
fi
