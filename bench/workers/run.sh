#!/usr/bin/env bash
# bench/workers/run.sh: the cost of spreading `microctl bench` over Swarm
# workers, against one target, on the engine at DOCKER_HOST (a swarm
# manager) with the Consul at CONSUL_HTTP_ADDR:
#
#   eval "$(scripts/testenv.sh env)"; bench/workers/run.sh
#   WORKERS=3 CONNS=48 DURATION=10s ROUNDS=3 bench/workers/run.sh
#   WORKER_LOOPS=1 bench/workers/run.sh   # -t 1 in each worker
#
# 1. Builds this checkout's microctl (static) and, unless IMAGE is given, an
#    image FROM scratch holding it (tag microctl/microctl:workers-bench-$$,
#    removed at the end), so the workers run the code under test.
# 2. Starts one target, `microctl serve --loops 1` on 127.0.0.1 (a free
#    port); the workers run on the host network and reach it there.
# 3. ROUNDS times, one after another: a single local `microctl bench -c
#    $CONNS`; the same single bench inside one container of the worker
#    image on the host network (what a worker's placement alone costs:
#    on a loaded host, Docker's cgroup competes as one group with every
#    process outside it); then `microctl bench --workers $WORKERS -c
#    $CONNS` (the same total connections). All for $DURATION, -o json.
# 4. Prints, per round, requests/s of each and their ratio, and for the
#    spread run ready_s (start to every worker ready) and start_to_load_s
#    (start to the last worker's first request). Also the load average
#    before and after, since the machine may be shared.
#
# On a one-host swarm this measures the cost of distribution (containers,
# the KV barrier, the merge), not scaling: all workers share the host's
# CPUs with the target. Traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKERS=${WORKERS:-3}
CONNS=${CONNS:-48}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-1}
# Event loops (-t) of the single run and of each worker; empty: GOMAXPROCS
# of the process (each worker's container sees every CPU of its node).
SINGLE_LOOPS=${SINGLE_LOOPS:-}
WORKER_LOOPS=${WORKER_LOOPS:-}
OUT=${OUT:-$(mktemp -d /tmp/workers-bench.XXXXXX)}

: "${CONSUL_HTTP_ADDR:?set CONSUL_HTTP_ADDR (eval \"\$(scripts/testenv.sh env)\")}"
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

BIN=$OUT/microctl
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$BIN" .)

cleanup() {
	[ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null || true
	[ -n "${OWN_IMAGE:-}" ] && docker rmi -f "$OWN_IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ -z "${IMAGE:-}" ]; then
	OWN_IMAGE=microctl/microctl:workers-bench-$$
	ctx=$(mktemp -d)
	cp "$BIN" "$ctx/microctl"
	printf 'FROM scratch\nCOPY microctl /microctl\nENTRYPOINT ["/microctl"]\n' >"$ctx/Dockerfile"
	DOCKER_BUILDKIT=0 docker build -q -t "$OWN_IMAGE" "$ctx" >/dev/null
	rm -rf "$ctx"
	IMAGE=$OWN_IMAGE
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --addr "127.0.0.1:$PORT" --loops 1 >"$OUT/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done
URL=http://127.0.0.1:$PORT/

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| round | single req/s (loops) | single in a container req/s | %d workers req/s (loops) | workers / single | ready_s | start_to_load_s |\n|---|---|---|---|---|---|---|\n' "$WORKERS"
for r in $(seq "$ROUNDS"); do
	"$BIN" bench "$URL" -c "$CONNS" -d "$DURATION" ${SINGLE_LOOPS:+-t "$SINGLE_LOOPS"} -o json >"$OUT/single-$r.json" 2>"$OUT/single-$r.err"
	docker run --rm --network host "$IMAGE" bench "$URL" -c "$CONNS" -d "$DURATION" ${SINGLE_LOOPS:+-t "$SINGLE_LOOPS"} -o json \
		>"$OUT/container-$r.json" 2>"$OUT/container-$r.err"
	"$BIN" bench "$URL" --workers "$WORKERS" --image "$IMAGE" -c "$CONNS" -d "$DURATION" ${WORKER_LOOPS:+-t "$WORKER_LOOPS"} -o json \
		>"$OUT/spread-$r.json" 2>"$OUT/spread-$r.err"
	s=$(jq .requests_per_sec "$OUT/single-$r.json")
	w=$(jq .requests_per_sec "$OUT/spread-$r.json")
	printf '| %d | %.0f (%s) | %.0f | %.0f (%s) | %.2f | %s | %s |\n' "$r" "$s" "$(jq .settings.loops "$OUT/single-$r.json")" \
		"$(jq .requests_per_sec "$OUT/container-$r.json")" \
		"$w" "$(jq .settings.loops "$OUT/spread-$r.json")" "$(echo "$w / $s" | bc -l)" \
		"$(jq .spread.ready_s "$OUT/spread-$r.json")" "$(jq .spread.start_to_load_s "$OUT/spread-$r.json")"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw output in $OUT"
