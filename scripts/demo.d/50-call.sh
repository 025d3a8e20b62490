# Smoke-test endpoints after the deploy (step 30), the way an operator would
# with `micro call`: microctl finds a passing greeter in the stack's Consul
# and calls it. Greeter.Call is served the go-micro rpc way (POST / with the
# Micro-* headers); Greeter.Hello is registered with HTTP metadata (GET /)
# and called as plain HTTP. --all calls every passing instance, a row each.
#
# The greeters register their overlay addresses, which the host cannot
# reach; so microctl runs the way a smoke-test job would, in a container on
# the stack's `micro` network (attachable), with the stack's Consul at
# consul:8500. The image is the greeter's (FROM scratch); only the static
# microctl binary is mounted into it.
if [ ! -s "$DEMO_OUT/stack-consul-addr" ]; then
	echo "(no deployed stack: skipping microctl call)"
	exit 0
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATIC="$DEMO_OUT/microctl-static"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$STATIC" .)

incall() {
	echo
	echo "\$ microctl $*"
	docker run --rm --network micro -e CONSUL_HTTP_ADDR=consul:8500 \
		-v "$STATIC:/microctl:ro" --entrypoint /microctl microctl/greeter:dev "$@"
}

incall call go.micro.srv.greeter Greeter.Call '{"name": "demo"}'
incall call go.micro.srv.greeter Greeter.Hello --all
code=0
incall call go.micro.srv.greeter Greeter.Call '{}' || code=$?
echo "(exit code $code: a go-micro error from the handler)"
code=0
incall call go.micro.srv.greeter Greeter.Cal '{}' || code=$?
echo "(exit code $code)"
