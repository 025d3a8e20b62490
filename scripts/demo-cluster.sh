#!/usr/bin/env bash
# `make demo-cluster`: the demo stack on the three-node cluster lab, and a
# node lost under load. Needs root (the lab), the images (make images) and
# the Consul binary the test environment builds (make demo-env does).
#
#   1. scripts/cluster.sh up: three engines, a swarm, the images on each node
#   2. microctl deploy -f examples/cluster/stack.yml: Consul servers on n1 n2 n3,
#      greeters spread over the nodes, the gateway on n1
#   3. microctl ps, microctl health, a key ring (microctl key init)
#   4. microctl bench -R 200 --jwt -d 20s through the gateway while n3 is stopped
#      (its engine and containers killed): swarm status exits 3 naming n3,
#      the greeter goes back to 3 running tasks on n1 and n2
#   5. start-node n3: the swarm and every instance ready again
#
# The lab is left up for you to explore (eval "$(scripts/cluster.sh env)");
# DEMO_CLUSTER_DOWN=1 removes it at the end. scripts/cluster.sh down removes
# it any time.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MICROCTL=${MICROCTL:-$ROOT/bin/microctl}
OUT=${DEMO_OUT:-${TMPDIR:-/tmp}/microctl-demo-cluster}
mkdir -p "$OUT"
cd "$ROOT"
[ -x "$MICROCTL" ] || { echo "demo-cluster: $MICROCTL is missing: run make build" >&2; exit 1; }

run() {
	echo
	echo "\$ microctl ${*}"
	"$MICROCTL" "$@"
}
lab() {
	echo
	echo "\$ scripts/cluster.sh ${*}"
	scripts/cluster.sh "$@"
}
# until_code CODE SECONDS CMD...: run CMD every second until it exits CODE.
until_code() {
	local want=$1 secs=$2 rc
	shift 2
	for _ in $(seq 1 "$secs"); do
		rc=0
		"$@" >/dev/null 2>&1 || rc=$?
		[ "$rc" = "$want" ] && return 0
		sleep 1
	done
	echo "demo-cluster: '$*' did not exit $want within ${secs}s (last: $rc)" >&2
	return 1
}
# greeters_off NODE: running greeter tasks on the other nodes. (Swarm
# keeps counting the tasks of a down node as running until it reconciles
# them, so microctl ps's running count is no measure of recovery here.)
greeters_off() {
	docker service ps cluster_greeter --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' 2>/dev/null |
		awk -v n="$1" '$1 != n && $2 == "Running" { c++ } END { print c + 0 }'
}

echo "=== the lab"
lab up
eval "$(scripts/cluster.sh env)"
scripts/cluster.sh env
run swarm status

echo
echo "=== the demo stack across the nodes"
run deploy -f examples/cluster/stack.yml --timeout 5m
run ps cluster
run key init >/dev/null 2>&1 || true # a ring already there is kept
run health go.micro.srv.greeter || true

# A greeter on every node, so that n3 takes one down with it: Swarm does
# not move tasks back to a node that returned (an earlier run), so the
# service is scaled to 0 and back, before the load starts.
if [ "$(greeters_off n3)" -ge 3 ]; then
	echo
	echo "(no greeter on n3, after an earlier run: scaling greeter to 0 and back to spread it)"
	docker service scale -d cluster_greeter=0 >/dev/null
	sleep 5
	docker service scale cluster_greeter=3 >/dev/null 2>&1
	until_code 0 120 "$MICROCTL" health go.micro.srv.greeter
fi

echo
echo "=== n3 stopped under load: bench -R 200 --jwt through the gateway"
"$MICROCTL" bench -R 200 -c 20 --jwt -d 20s "$MICROCTL_LAB_GATEWAY/" -o json >"$OUT/bench-stop.json" 2>"$OUT/bench-stop.err" &
bench=$!
sleep 4
lab stop-node n3
start=$(date +%s)
until_code 3 60 "$MICROCTL" swarm status
echo "(swarm status exits 3 $(($(date +%s) - start))s after the stop)"
run swarm status || true
wait "$bench" || true
echo
echo "\$ microctl bench -R 200 -c 20 --jwt -d 20s $MICROCTL_LAB_GATEWAY/   (during the stop)"
python3 - "$OUT/bench-stop.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
print(f'requests {d["requests"]}, errors {d["errors"]["total"]}, status {d["status"]}')
l, u = d["latency"], d["latency_uncorrected"]
print(f'p50 {l["p50_us"]/1000:.1f} ms, p99 {l["p99_us"]/1000:.1f} ms, max {l["max_us"]/1000:.1f} ms (corrected for the rate); uncorrected p99 {u["p99_us"]/1000:.1f} ms')
PY
for _ in $(seq 1 90); do [ "$(greeters_off n3)" -ge 3 ] && break; sleep 1; done
echo "(greeter back to $(greeters_off n3) running tasks off n3 $(($(date +%s) - start))s after the stop)"
run ps cluster
run health go.micro.srv.greeter || true

echo
echo "=== n3 back"
lab start-node n3
until_code 0 90 "$MICROCTL" swarm status
run swarm status
until_code 0 120 "$MICROCTL" health go.micro.srv.greeter
run health go.micro.srv.greeter

if [ "${DEMO_CLUSTER_DOWN:-}" = 1 ]; then
	lab down
else
	echo
	echo "demo-cluster: done; the lab is still up: eval \"\$(scripts/cluster.sh env)\" to use it, scripts/cluster.sh down to remove it"
fi
