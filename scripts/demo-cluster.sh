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
# running SERVICE: its running tasks, as microctl ps counts them.
running() {
	"$MICROCTL" ps cluster --mesh=false -o json 2>/dev/null | python3 -c '
import json,sys
print(sum(s["running"] for s in json.load(sys.stdin) if s["name"].endswith("_"+sys.argv[1]) or s["name"]==sys.argv[1]))' "$1" || echo 0
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
print(json.dumps({k: d.get(k) for k in ("requests","errors","non2xx","status_codes","latency")}, indent=1)[:1500])
PY
for _ in $(seq 1 90); do [ "$(running greeter)" -ge 3 ] && break; sleep 1; done
echo "(greeter back to $(running greeter) running tasks $(($(date +%s) - start))s after the stop)"
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
