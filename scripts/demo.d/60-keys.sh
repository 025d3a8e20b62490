# JWT signing keys: a key ring in the stack's Consul KV that rotates without
# breaking a token in flight, and the stack's gateway verifying tokens with
# it (it follows the ring's JWKS with a blocking query).
export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")
GATEWAY=$(cat "$DEMO_OUT/stack-gateway-addr")

# A ring from an earlier demo run is kept: key init refuses to overwrite one.
if "$MICROCTL" key show >/dev/null 2>&1; then
	echo
	echo "(a key ring already exists at micro/config/jwt: skipping key init)"
else
	run key init
fi
run key show

echo
echo "\$ TOKEN=\$(microctl key sign --sub demo --ttl 10m)"
TOKEN=$("$MICROCTL" key sign --sub demo --ttl 10m)
echo "${TOKEN:0:48}..."
echo "$TOKEN" >"$DEMO_OUT/token"

# The gateway learns about a new ring within its blocking query's round trip.
for _ in $(seq 1 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://$GATEWAY/")" = 200 ] && break
	sleep 0.2
done
echo
echo "\$ curl -s -w ' (%{http_code})' http://$GATEWAY/                  # no token"
curl -s -w ' (%{http_code})\n' "http://$GATEWAY/"
echo
echo "\$ curl -s -H \"Authorization: Bearer \$TOKEN\" http://$GATEWAY/"
curl -sS --fail -H "Authorization: Bearer $TOKEN" "http://$GATEWAY/"

# The token was signed with the key that is now current; after a rotation it
# is signed with a previous key, which verifies until its retire_after.
run key rotate
echo
echo "\$ curl -s -H \"Authorization: Bearer \$TOKEN\" http://$GATEWAY/   # the same token, after the rotation"
curl -sS --fail -H "Authorization: Bearer $TOKEN" "http://$GATEWAY/"
echo
echo "\$ microctl key verify - <<<\"\$TOKEN\""
"$MICROCTL" key verify - <<<"$TOKEN"
