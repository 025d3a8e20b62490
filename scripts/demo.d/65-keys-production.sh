# Keys in production (issue 16): the key rotator as a Swarm service in the
# demo stack, the JWKS endpoint with its caching headers, the audit trail.
# Run the whole demo under `flock /tmp/microctl-demo.lock make demo`.
export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")

# The rotator: two replicas of microctl/microctl:dev elect one leader; the
# Consul address goes into a Docker secret, not the environment. The ring
# rotates every 30 days (its default rotation period allows nothing
# shorter than 15 days). --jwks-port also runs `microctl key serve` as the
# service demo_jwks, for gateways that cannot read Consul.
JWKS_ADDR=127.0.0.1:18081
run key schedule --every 30d --stack demo --network micro --service-consul-addr consul:8500 --jwks-port 18081
for _ in $(seq 1 100); do
	"$MICROCTL" doctor -o json 2>/dev/null | grep -q '"rotator .* rotates every' &&
		curl -sf "http://$JWKS_ADDR/healthz" >/dev/null && break
	sleep 0.3
done
echo
echo "\$ microctl doctor | grep keys."
"$MICROCTL" doctor 2>&1 | grep 'keys\.' || true
echo
echo "\$ docker service logs --raw demo_key-rotator"
# Through a file, not a pipe into head: with pipefail, head closing the
# pipe early would fail the step (SIGPIPE).
rotlog=$(mktemp)
docker service logs --raw demo_key-rotator >"$rotlog" 2>&1 || true
head -4 "$rotlog"
rm -f "$rotlog"

# The JWKS endpoint of the stack, with its caching headers.
echo
echo "\$ curl -si http://$JWKS_ADDR/.well-known/jwks.json"
curl -si "http://$JWKS_ADDR/.well-known/jwks.json" | tr -d '\r' | grep -v '^Date:' | cut -c1-160
ETAG=$(curl -sI "http://$JWKS_ADDR/.well-known/jwks.json" | tr -d '\r' | sed -n 's/^Etag: //Ip')
echo
echo "\$ curl -si -H 'If-None-Match: $ETAG' http://$JWKS_ADDR/.well-known/jwks.json"
curl -si -H "If-None-Match: $ETAG" "http://$JWKS_ADDR/.well-known/jwks.json" | tr -d '\r' | grep -v '^Date:'

run key log --since 1h
