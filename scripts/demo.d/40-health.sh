# Registry and health: what Consul knows about go-micro services.
#
# Runs against the test environment's Consul (CONSUL_HTTP_ADDR) with two
# greeters this step starts in the background and stops at its end: one
# heartbeating every 5s with a 15s TTL, one with the seed's 15s/10s, which
# lint warns about (one lost heartbeat expires it). Both listen on
# 127.0.0.1, which lint flags as unreachable from other hosts: that is the
# point of the rule. When MICROCTL_STACK_CONSUL_ADDR names a deployed
# stack's Consul, the same three commands also run against it (their
# verdicts are shown, never fatal).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GREETER=$ROOT/bin/images/greeter
WORK=$(mktemp -d)
if [ ! -x "$GREETER" ]; then
	GREETER=$WORK/greeter
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$GREETER" ./examples/greeter)
fi
NAME=go.micro.srv.demo-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

start_greeter() { # VERSION TTL INTERVAL
	MICRO_SERVER_NAME=$NAME MICRO_SERVER_VERSION=$1 "$GREETER" --server_address 127.0.0.1:0 \
		--register_ttl "$2" --register_interval "$3" 2>>"$DEMO_OUT/40-greeters.log" &
	pids+=($!)
}
start_greeter 1.0.0 15 5
start_greeter 1.1.0 15 10
for _ in $(seq 1 100); do
	"$MICROCTL" health "$NAME" 2>/dev/null | grep -q "^2 instance(s) of 1 service(s): 2 passing" && break
	sleep 0.2
done

run registry ls
run registry get "$NAME"
run health "$NAME"
"$MICROCTL" health "$NAME" -o json >"$DEMO_OUT/health.json"

# Exit code 3: lint found something, as it should here.
code=0
run health lint "$NAME" || code=$?
[ "$code" = 3 ] || { echo "demo: health lint exited $code, want 3" >&2; exit 1; }
"$MICROCTL" health lint "$NAME" -o json >"$DEMO_OUT/lint.json" 2>/dev/null || true

# A watch sees one greeter leave (SIGTERM: it deregisters itself).
"$MICROCTL" health watch "$NAME" --for 4s >"$WORK/watch.out" 2>&1 &
watch=$!
sleep 1.5
kill -TERM "${pids[1]}"
wait "$watch"
echo
echo "\$ microctl health watch $NAME --for 4s    # while one greeter stops"
cat "$WORK/watch.out"

if [ -n "${MICROCTL_STACK_CONSUL_ADDR:-}" ]; then
	echo
	echo "# the deployed stack's Consul at $MICROCTL_STACK_CONSUL_ADDR"
	for cmd in "registry ls" "health" "health lint"; do
		# shellcheck disable=SC2086
		CONSUL_HTTP_ADDR=$MICROCTL_STACK_CONSUL_ADDR run $cmd || echo "(exit $?)"
	done
fi
