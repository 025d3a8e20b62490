# Deploy the demo stack (examples/stack.yml): Consul inside the swarm as the
# registry, three greeters that register in it, and the API gateway in front
# of them, on the micro overlay network of step 20. Then look at it, and show
# that a second deploy of the same file changes nothing.
#
# The stack stays up for the steps after this one (they work against its
# Consul and its gateway); `microctl rm demo` removes it. Its Consul answers
# on 127.0.0.1:18500 and the gateway on 127.0.0.1:18080 (host-mode ports),
# next to the test environment's agent on 8500.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_CONSUL=127.0.0.1:18500

# Step 20 (microctl swarm init) creates the micro network; on its own this
# step makes it the way the seed article does.
if ! docker network inspect micro >/dev/null 2>&1; then
	echo "# no micro network yet: creating it as the seed does"
	docker network create --driver overlay --attachable micro >/dev/null
fi

# Nothing can be pulled here: --resolve-image never keeps the local images.
run deploy -f "$ROOT/examples/stack.yml" --resolve-image never --timeout 3m
run ps demo
"$MICROCTL" ps demo -o json >"$DEMO_OUT/ps.json"

# The greeters and the gateway register in the stack's Consul once it has a
# leader; wait for all four.
for _ in $(seq 1 100); do
	n=$("$MICROCTL" --consul-addr "$STACK_CONSUL" registry ls -o json 2>/dev/null |
		grep -c '"name": "go.micro.\(srv.greeter\|api\)"' || true)
	[ "$n" = 2 ] && "$MICROCTL" --consul-addr "$STACK_CONSUL" health go.micro.srv.greeter >/dev/null 2>&1 && break
	sleep 0.2
done
run --consul-addr "$STACK_CONSUL" registry ls

# A second deploy of the same file: every service unchanged, no task restarted.
run deploy -f "$ROOT/examples/stack.yml" --resolve-image never --dry-run
echo "$STACK_CONSUL" >"$DEMO_OUT/stack-consul-addr"
echo "127.0.0.1:18080" >"$DEMO_OUT/stack-gateway-addr"
