# Deploys that know the mesh: greeter declares its Consul name
# (microctl.consul.service), so deploy gates its updates on Consul too.
# First a good update, gated: each new greeter must register and pass before
# the next one replaces an old one. Then a bad version, one that runs but
# never registers (wrong registry address): Swarm alone would call it
# converged; microctl catches it, rolls it back and exits 3, while the
# gateway keeps answering 200 (a bench through it runs the whole time).
export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")
GATEWAY=$(cat "$DEMO_OUT/stack-gateway-addr")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FILE=$ROOT/examples/stack.yml

override() {
	local f=$DEMO_OUT/greeter-$1.yml
	printf 'services:\n  greeter:\n    environment:\n      %s: "%s"\n' "$2" "$3" >"$f"
	echo "$f"
}

# Short timings for the demo: the defaults follow the TTL (15s here).
GATE=(--min-healthy 5s --healthy-deadline 20s --resolve-image never --rollback-on-failure --timeout 4m)

good=$(override v2 MICRO_SERVER_VERSION "demo-$RANDOM")
echo
echo "\$ microctl deploy -f examples/stack.yml -f greeter-v2.yml ${GATE[*]}"
"$MICROCTL" deploy -f "$FILE" -f "$good" "${GATE[@]}"

# The bad version, under load through the gateway.
"$MICROCTL" bench -R 100 -c 10 --jwt -d 600s -o json "http://$GATEWAY/" >"$DEMO_OUT/mesh-bench.json" 2>/dev/null &
bench=$!
sleep 2
bad=$(override noreg MICRO_REGISTRY_ADDRESS "consul:9999")
echo
echo "\$ microctl deploy -f examples/stack.yml -f greeter-noreg.yml ${GATE[*]}"
rc=0
"$MICROCTL" deploy -f "$FILE" -f "$bad" "${GATE[@]}" || rc=$?
echo "(exit $rc)"
sleep 3
kill -INT "$bench"
wait "$bench" || true
python3 - "$DEMO_OUT/mesh-bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = r["errors"]["total"] + sum(n for c, n in r["status"].items() if c != "200")
print(f"\nthrough the gateway meanwhile: {r['requests']} answers, status {r['status']}, transport errors {r['errors']['total']}: {bad} failed")
PY
[ "$rc" = 3 ] || { echo "demo: the bad version was not caught (exit $rc)" >&2; exit 1; }
run ps demo
