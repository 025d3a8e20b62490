#!/usr/bin/env bash
# Node loss under load, measured on the cluster lab (docs/cluster.md), for
# docs/benchmarks.md. For each event (stop: n3's engine and containers
# killed; partition: n3's link cut, its containers running), with the
# cluster stack deployed and one greeter per node:
#
#   microctl bench -R 200 -c 20 --jwt -d 40s through the gateway; n3 is hit
#   10 s in; then measured:
#     failed      requests that failed or got a non-2xx answer
#     p99         corrected p99 latency over the whole run (it includes the event)
#     max         the slowest request
#     retries     gateway retries on another greeter (each one a request that
#                 went to n3 and got nothing), from /_gateway/stats
#     last_retry  seconds from the event to the gateway's last retry: the
#                 time until no request goes to the lost node (polled every 0.5 s)
#     full        seconds from the event until greeter runs 3 tasks again,
#                 none on n3
#     swarm_down  seconds from the event until `microctl swarm status` exits 3
#
#   bench/cluster/run.sh [stop|partition]...   (default: both)
#
# Needs: scripts/cluster.sh up, the stack (microctl deploy -f
# examples/cluster/stack.yml), a key ring (microctl key init). The lab is
# left whole at the end. Writes bench/cluster/results.txt (and prints it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
MICROCTL=${MICROCTL:-$ROOT/bin/microctl}
OUT=${OUT:-$(mktemp -d)}
RESULTS=$ROOT/bench/cluster/results.txt
eval "$(scripts/cluster.sh env)"
export DOCKER_HOST CONSUL_HTTP_ADDR

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

# greeter_layout: running greeter tasks per node hostname, e.g. "n1=1 n2=1 n3=1".
greeter_layout() {
	python3 - <<'PY'
import json, os, subprocess
def d(*a):
    return subprocess.run(["docker", *a], capture_output=True, text=True, timeout=30).stdout
nodes = {l.split()[0]: l.split()[1] for l in d("node", "ls", "--format", "{{.ID}} {{.Hostname}}").splitlines() if l.strip()}
count = {}
for l in d("service", "ps", "cluster_greeter", "--filter", "desired-state=running", "--no-trunc", "--format", "{{.Node}} {{.CurrentState}}").splitlines():
    f = l.split()
    if len(f) >= 2 and f[1] == "Running":
        count[f[0]] = count.get(f[0], 0) + 1
print(" ".join(f"{k}={v}" for k, v in sorted(count.items())))
PY
}

whole() {
	scripts/cluster.sh up --images "" >/dev/null 2>&1 || true
	for _ in $(seq 1 120); do "$MICROCTL" swarm status >/dev/null 2>&1 && break; sleep 1; done
	# One greeter per node again: Swarm does not move tasks back by itself,
	# and a forced rolling update (start-first) places new tasks beside the
	# old ones; scaled to 0 and back, the spread is even.
	if [ "$(greeter_layout)" != "n1=1 n2=1 n3=1" ]; then
		docker service scale -d cluster_greeter=0 >/dev/null
		for _ in $(seq 1 60); do [ -z "$(greeter_layout)" ] && break; sleep 1; done
		docker service scale -d cluster_greeter=3 >/dev/null
	fi
	for _ in $(seq 1 120); do
		[ "$(greeter_layout)" = "n1=1 n2=1 n3=1" ] && "$MICROCTL" health go.micro.srv.greeter >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "run: the cluster did not come back whole: $(greeter_layout)" >&2
	return 1
}

stats_poll() { # FILE: "time retries upstream_errors" lines every 0.5 s
	while :; do
		s=$(curl -fsS --max-time 1 "$MICROCTL_LAB_GATEWAY/_gateway/stats" 2>/dev/null || true)
		[ -n "$s" ] && echo "$(now) $(echo "$s" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["retries"], d["upstream_errors"])')" >>"$1"
		sleep 0.5
	done
}

echo "# bench/cluster/run.sh $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$RESULTS"
printf '%-10s %8s %7s %8s %8s %8s %11s %6s %10s\n' event requests failed p99_ms max_ms retries last_retry_s full_s swarm_down_s | tee -a "$RESULTS"
for event in "${@:-stop partition}"; do
	for ev in $event; do
		whole
		: >"$OUT/$ev.stats"
		stats_poll "$OUT/$ev.stats" &
		poller=$!
		"$MICROCTL" bench -R 200 -c 20 --jwt -d 40s "$MICROCTL_LAB_GATEWAY/" -o json >"$OUT/$ev.json" 2>"$OUT/$ev.err" &
		bench=$!
		sleep 10
		t0=$(now)
		case $ev in
		stop) scripts/cluster.sh stop-node n3 2>/dev/null ;;
		partition) scripts/cluster.sh partition-node n3 2>/dev/null ;;
		*) echo "run: unknown event $ev" >&2; exit 2 ;;
		esac
		down="" full=""
		for _ in $(seq 1 300); do
			[ -z "$down" ] && ! "$MICROCTL" swarm status >/dev/null 2>&1 && down=$(since "$t0" "$(now)")
			if [ -z "$full" ]; then
				l=$(greeter_layout)
				if [[ $l != *n3=* ]] && [ "$(echo "$l" | tr ' ' '\n' | awk -F= '{s += $2} END {print s + 0}')" = 3 ]; then
					full=$(since "$t0" "$(now)")
				fi
			fi
			[ -n "$down" ] && [ -n "$full" ] && ! kill -0 "$bench" 2>/dev/null && break
			sleep 0.5
		done
		wait "$bench" || true
		kill "$poller" 2>/dev/null || true
		wait "$poller" 2>/dev/null || true
		python3 - "$OUT/$ev.json" "$OUT/$ev.stats" "$t0" "$ev" "${full:--}" "${down:--}" <<'PY' | tee -a "$RESULTS"
import json, sys
b = json.load(open(sys.argv[1]))
t0 = float(sys.argv[3])
rows = [l.split() for l in open(sys.argv[2]) if l.strip()]
rows = [(float(t), int(r), int(e)) for t, r, e in rows]
before = [r for t, r, e in rows if t <= t0]
base = before[-1] if before else (rows[0][1] if rows else 0)
last, prev = None, base
for t, r, e in rows:
    if t > t0 and r > prev:
        last = t - t0
    prev = r
retries = (rows[-1][1] - base) if rows else 0
failed = b["errors"]["total"] + sum(v for k, v in b.get("status", {}).items() if not k.startswith("2"))
print(f'{sys.argv[4]:<10} {b["requests"]:>8} {failed:>7} {b["latency"]["p99_us"]/1000:>8.1f} {b["latency"]["max_us"]/1000:>8.1f} '
      f'{retries:>8} {("%.1f" % last) if last is not None else "-":>11} {sys.argv[5]:>6} {sys.argv[6]:>10}')
PY
		case $ev in
		stop) scripts/cluster.sh start-node n3 2>/dev/null ;;
		partition) scripts/cluster.sh heal-node n3 2>/dev/null ;;
		esac
	done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg); raw output in $OUT" | tee -a "$RESULTS"
whole
