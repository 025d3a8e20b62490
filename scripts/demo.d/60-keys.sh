# JWT signing keys: a key ring in Consul KV that rotates without breaking a
# token in flight, and the example gateway verifying tokens with it.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGES=${IMAGES:-$ROOT/bin/images}
for b in greeter gateway; do
	[ -x "$IMAGES/$b" ] || { echo "demo: $IMAGES/$b is missing: run make images" >&2; exit 1; }
done

# A ring from an earlier demo run is kept: key init refuses to overwrite one.
if "$MICROCTL" key show >/dev/null 2>&1; then
	echo
	echo "(a key ring already exists at micro/config/jwt: skipping key init)"
else
	run key init
fi
run key rotate
run key show

# greeter and the gateway, in the background, against the test environment's
# Consul. The service name is unique to this run so that the gateway proxies
# to this greeter only, whatever else is registered in the shared Consul.
name="go.micro.srv.greeter-demo-$$"
logs=$DEMO_OUT/60-keys
mkdir -p "$logs"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
MICRO_SERVER_NAME=$name "$IMAGES/greeter" --server_address 127.0.0.1:0 --register_ttl 10 --register_interval 5 \
	>"$logs/greeter.log" 2>&1 &
pids+=($!)
GATEWAY_NO_REGISTER=1 "$IMAGES/gateway" --server_address 127.0.0.1:0 --target "$name" >"$logs/gateway.log" 2>&1 &
pids+=($!)

addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.*gateway listening on \([0-9.:]*\),.*/\1/p' "$logs/gateway.log" | head -1)
	[ -n "$addr" ] && grep -q "passing instances of $name" "$logs/gateway.log" && break
	sleep 0.1
done
[ -n "$addr" ] || { echo "demo: the gateway did not start:" >&2; cat "$logs/gateway.log" >&2; exit 1; }

echo
echo "\$ TOKEN=\$(microctl key sign --sub demo --ttl 10m)"
TOKEN=$("$MICROCTL" key sign --sub demo --ttl 10m)
echo "${TOKEN:0:48}..."

echo
echo "\$ curl -s -w ' (%{http_code})' http://$addr/                  # no token"
curl -s -w ' (%{http_code})\n' "http://$addr/"
echo
echo "\$ curl -s -H \"Authorization: Bearer \$TOKEN\" http://$addr/"
curl -sS --fail -H "Authorization: Bearer $TOKEN" "http://$addr/"

# The token was signed with the key that is now current; after a rotation it
# is signed with a previous key, which verifies until its retire_after.
run key rotate
echo
echo "\$ curl -s -H \"Authorization: Bearer \$TOKEN\" http://$addr/   # the same token, after the rotation"
curl -sS --fail -H "Authorization: Bearer $TOKEN" "http://$addr/"
echo
echo "\$ microctl key verify - <<<\"\$TOKEN\""
"$MICROCTL" key verify - <<<"$TOKEN"
echo
echo "gateway counters: $(curl -s "http://$addr/_gateway/stats" | sed 's/"kids":\[[^]]*\],//')"
