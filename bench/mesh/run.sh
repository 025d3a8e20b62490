#!/usr/bin/env bash
# Issue 12's table: what a client of the demo gateway sees while greeter is
# redeployed, gated (microctl deploy) and not (docker service update).
#
#   bench/mesh/run.sh [CASE...]     (default: every case; RATE to change the load)
#
# Needs the demo stack (make demo, or step 30 of scripts/demo.d) and the
# images from scripts/build-images.sh (greeter:dev, :critical, :crash,
# :err500). For the whole of each deploy, `microctl bench -R $RATE --jwt`
# runs through the gateway at 127.0.0.1:18080 and every non-200 answer and
# transport error is counted. Between cases the stack goes back to
# examples/stack.yml. Holds /tmp/microctl-demo.lock throughout.
#
# Output: one Markdown row per case on stdout, raw reports in $OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MICROCTL=${MICROCTL:-$ROOT/bin/microctl}
RATE=${RATE:-500}
AFTER=${AFTER:-10}
CONSUL=127.0.0.1:18500
GATEWAY=http://127.0.0.1:18080/
OUT=${OUT:-${TMPDIR:-/tmp}/microctl-bench-mesh}
FILE=$ROOT/examples/stack.yml
SVC=demo_greeter
mkdir -p "$OUT"

[ -x "$MICROCTL" ] || { echo "run.sh: $MICROCTL missing: make build" >&2; exit 1; }
exec 9>/tmp/microctl-demo.lock
flock 9

log() { echo "mesh: $*" >&2; }
mc() { "$MICROCTL" --consul-addr "$CONSUL" "$@"; }

# override IMAGE [ENV...]: a compose override file for greeter.
override() {
	local f=$OUT/override.yml image=$1
	shift
	{
		echo "services:"
		echo "  greeter:"
		echo "    image: $image"
		echo "    environment:"
		for e in "$@"; do echo "      ${e%%=*}: \"${e#*=}\""; done
	} >"$f"
	echo "$f"
}

# reset: the stack as examples/stack.yml has it, serving.
reset() {
	mc deploy -f "$FILE" --resolve-image never --rollback-on-failure --timeout 4m >"$OUT/reset.log" 2>&1 ||
		{ log "reset failed:"; cat "$OUT/reset.log" >&2; exit 1; }
}

# measure NAME CMD...: bench through the gateway while CMD runs; prints a row.
measure() {
	local name=$1
	shift
	local load0 load1 start end rc=0
	reset
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	# Longer than any case: it is stopped with SIGINT $AFTER s after the
	# command ends (bench reports what it saw when interrupted).
	# Started directly, not through mc: $! must be microctl itself. A
	# background subshell ignores SIGINT (bash does that for background
	# jobs of a script), so the interrupt below never reached the bench
	# and every case ran the full 900 s.
	"$MICROCTL" --consul-addr "$CONSUL" bench -R "$RATE" -c 20 --jwt -d 900s -o json "$GATEWAY" >"$OUT/$name.json" 2>"$OUT/$name.bench.err" &
	local bench=$!
	sleep 3
	start=$(date +%s.%N)
	"$@" >"$OUT/$name.log" 2>&1 || rc=$?
	end=$(date +%s.%N)
	# Let the bench see what follows the command (traffic on the version
	# left serving), then stop it.
	sleep "$AFTER"
	kill -INT "$bench"
	wait "$bench" || true
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["elapsed_s"] < 800 else 1)' "$OUT/$name.json" ||
		{ log "$name: the bench was not stopped by SIGINT"; exit 1; }
	load1=$(cut -d' ' -f1-3 /proc/loadavg)
	python3 - "$OUT/$name.json" "$name" "$rc" "$start" "$end" "$load0" "$load1" <<'PY'
import json, sys
path, name, rc, start, end, load0, load1 = sys.argv[1:]
r = json.load(open(path))
total = r["requests"] + r["errors"]["total"]
bad = r["errors"]["total"] + sum(n for code, n in r["status"].items() if code != "200")
codes = ", ".join(f"{c}: {n}" for c, n in sorted(r["status"].items()) if c != "200")
print(f"| {name} | exit {rc} | {float(end)-float(start):.1f} s | {bad} of {total} ({100*bad/max(total,1):.2f}%) | {codes or '-'}; transport errors {r['errors']['total']} | {load0} / {load1} |")
PY
}

gated() { mc deploy -f "$FILE" -f "$1" --resolve-image never --rollback-on-failure --timeout 5m; }
raw() { docker service update --detach=false "$@" "$SVC"; }

cases=${*:-"good good-raw nogate noreg noreg-raw critical critical-raw crash crash-raw canary"}
docker network inspect micro >/dev/null 2>&1 || docker network create --driver overlay --attachable micro >/dev/null
reset
for _ in $(seq 1 60); do mc key show >/dev/null 2>&1 && break; mc key init >/dev/null 2>&1 || sleep 1; done
echo "| case | command exit | command time | failed requests | non-200 / errors | load before / after |"
echo "|---|---|---|---|---|---|"
for c in $cases; do
	case $c in
	good) measure "$c" gated "$(override microctl/greeter:dev MICRO_SERVER_VERSION=good-$RANDOM)" ;;
	good-raw) measure "$c" raw --env-add "MICRO_SERVER_VERSION=raw-$RANDOM" ;;
	nogate) measure "$c" mc deploy -f "$FILE" -f "$(override microctl/greeter:dev MICRO_SERVER_VERSION=nogate-$RANDOM)" --resolve-image never --no-mesh --timeout 5m ;;
	noreg) measure "$c" gated "$(override microctl/greeter:dev MICRO_REGISTRY_ADDRESS=consul:9999)" ;;
	noreg-raw) measure "$c" raw --env-add MICRO_REGISTRY_ADDRESS=consul:9999 ;;
	critical) measure "$c" gated "$(override microctl/greeter:critical)" ;;
	critical-raw) measure "$c" raw --image microctl/greeter:critical ;;
	crash) measure "$c" gated "$(override microctl/greeter:crash)" ;;
	crash-raw) measure "$c" raw --image microctl/greeter:crash ;;
	canary) measure "$c" mc deploy -f "$FILE" -f "$(override microctl/greeter:err500)" --resolve-image never --canary 1 \
		--canary-check "$MICROCTL --consul-addr $CONSUL bench -R 100 -d 10s --jwt $GATEWAY -o json | python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(1 if sum(n for c,n in r[\"status\"].items() if c!=\"200\")+r[\"errors\"][\"total\"] else 0)'" --timeout 5m ;;
	*) echo "run.sh: unknown case $c" >&2; exit 2 ;;
	esac
done
reset
