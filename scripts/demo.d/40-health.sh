# Registry and health: what the deployed stack's Consul knows about its
# go-micro services (step 30 deployed it). TTL and interval come from the
# Meta the services publish; lint judges them, and the registered addresses
# (overlay addresses here, reachable from every node).
export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")

run registry ls
run registry get go.micro.srv.greeter
run health
"$MICROCTL" health -o json >"$DEMO_OUT/health.json"
code=0
run health lint || code=$?
echo "(health lint exit code $code: 0 nothing found, 3 findings)"

# Follow the registry while the stack scales greeters down and back up: the
# watch sees an instance deregister itself (SIGTERM) and a new one register.
"$MICROCTL" health watch go.micro.srv.greeter --for 12s >"$DEMO_OUT/watch.out" 2>&1 &
watch=$!
sleep 1
run scale demo_greeter=2
run scale demo_greeter=3
wait "$watch" || true
echo
echo "\$ microctl health watch go.micro.srv.greeter --for 12s    # while greeters scale 3 -> 2 -> 3"
cat "$DEMO_OUT/watch.out"
