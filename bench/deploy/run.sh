#!/usr/bin/env bash
# Wall time to deploy and converge the same stack of SERVICES greeters with
# `microctl deploy` and with `docker stack deploy --detach=false`, on the
# same engine, side by side, ROUNDS times (the order alternates each round,
# so neither tool always runs on a warmer engine).
#
#   bench/deploy/run.sh [ROUNDS]          (default 3; SERVICES=10)
#
# Needs: a swarm manager (scripts/testenv.sh up --swarm), the images
# (make images), the docker CLI. Both tools deploy the same file with
# --resolve-image never (nothing can be pulled here) and default update
# settings (monitor 5s): the time is until each tool itself says the stack
# has converged. Stacks are removed (and waited out) between runs, untimed.
# Prints a Markdown table and the median ratio microctl/docker.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=${1:-3}
SERVICES=${SERVICES:-10}
MICROCTL=${MICROCTL:-$ROOT/bin/microctl}
WORK=$(mktemp -d)
SUFFIX=$$
M_STACK=benchm$SUFFIX
D_STACK=benchd$SUFFIX

[ -x "$MICROCTL" ] || (cd "$ROOT" && go build -o "$MICROCTL" .)
command -v docker >/dev/null || { echo "bench: the docker CLI is needed" >&2; exit 1; }
docker image inspect microctl/greeter:dev >/dev/null || { echo "bench: run make images first" >&2; exit 1; }

cleanup() {
	"$MICROCTL" rm "$M_STACK" >/dev/null 2>&1 || true
	"$MICROCTL" rm "$D_STACK" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# The stack: SERVICES independent greeters, one replica each, that start
# without Consul (GREETER_NO_REGISTER=1).
{
	echo 'version: "3.8"'
	echo 'services:'
	for i in $(seq 1 "$SERVICES"); do
		cat <<EOS
  svc$i:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
      MICRO_SERVER_NAME: bench.svc$i
EOS
	done
} >"$WORK/stack.yml"

now() { date +%s.%N; }

run_microctl() {
	local t0 t1
	t0=$(now)
	"$MICROCTL" deploy -f "$WORK/stack.yml" --stack "$M_STACK" --resolve-image never --timeout 5m \
		>"$WORK/m.out" 2>"$WORK/m.err" || { cat "$WORK/m.err" >&2; exit 1; }
	t1=$(now)
	"$MICROCTL" rm "$M_STACK" >/dev/null 2>&1
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

run_docker() {
	local t0 t1
	t0=$(now)
	docker stack deploy --detach=false --resolve-image never -c "$WORK/stack.yml" "$D_STACK" \
		>"$WORK/d.out" 2>&1 || { cat "$WORK/d.out" >&2; exit 1; }
	t1=$(now)
	# docker stack rm does not wait; microctl rm does (and works on
	# docker's stacks).
	"$MICROCTL" rm "$D_STACK" >/dev/null 2>&1
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

echo "| round | microctl deploy (s) | docker stack deploy --detach=false (s) | ratio |"
echo "|---|---|---|---|"
ratios=()
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		m=$(run_microctl)
		d=$(run_docker)
	else
		d=$(run_docker)
		m=$(run_microctl)
	fi
	ratio=$(awk -v m="$m" -v d="$d" 'BEGIN {printf "%.3f", m / d}')
	ratios+=("$ratio")
	printf '| %d | %.2f | %.2f | %.3f |\n' "$r" "$m" "$d" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo
echo "median ratio microctl/docker: $median ($SERVICES services, $ROUNDS rounds; goal <= 0.3)"
