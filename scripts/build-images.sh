#!/usr/bin/env bash
# Build every example (examples/*/main.go) as a static binary and as a Docker
# image FROM scratch, tagged microctl/<name>:<tag>. Nothing is pulled: the
# image holds only the binary. Also packs the test environment's static
# Consul binary as microctl/consul:<tag>, so a stack can run Consul inside
# the swarm as the seed's compose file does.
#
#   scripts/build-images.sh [TAG]      (default: dev)
#
# Also microctl/microctl:<tag>, microctl itself (the key rotator service).
#
# Extra images for tests:
#   microctl/greeter:crash   the greeter with GREETER_FAIL_START=1 (exits at once)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${1:-dev}
OUT=$ROOT/bin/images
CACHE=${MICROCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/microctl}
mkdir -p "$OUT"

log() { echo "images: $*" >&2; }

# build_image IMAGE NAME BINARY [DOCKERFILE-LINES...]
build_image() {
	local image=$1 name=$2 bin=$3
	shift 3
	local ctx
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' RETURN
	cp "$bin" "$ctx/$name"
	{
		echo "FROM scratch"
		echo "COPY $name /$name"
		echo "LABEL org.opencontainers.image.source=https://github.com/microctl/microctl"
		printf '%s\n' "$@"
		echo "ENTRYPOINT [\"/$name\"]"
	} >"$ctx/Dockerfile"
	# The classic builder: it needs nothing from a registry for FROM scratch.
	DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null 2>"$ctx/err" ||
		{ cat "$ctx/err" >&2; return 1; }
	log "$image"
}

for dir in "$ROOT"/examples/*/; do
	name=$(basename "$dir")
	[ -f "$dir/main.go" ] || continue
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$OUT/$name" "./examples/$name")
	build_image "microctl/$name:$TAG" "$name" "$OUT/$name" "EXPOSE 8080"
done

# microctl itself, for `microctl key schedule` (the key rotator service) and
# `microctl key serve` in a stack.
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$OUT/microctl" .)
build_image "microctl/microctl:$TAG" microctl "$OUT/microctl"

if [ -x "$OUT/greeter" ]; then
	build_image "microctl/greeter:crash" greeter "$OUT/greeter" "EXPOSE 8080" "ENV GREETER_FAIL_START=1"
fi

consul_bin=$CACHE/consul-v1.20.1-static/consul
if [ -x "$consul_bin" ]; then
	cp "$consul_bin" "$OUT/consul"
	build_image "microctl/consul:$TAG" consul "$OUT/consul" "EXPOSE 8500 8300 8301 8301/udp" 'CMD ["agent", "-dev", "-client", "0.0.0.0"]'
else
	log "skipping microctl/consul: no Consul binary yet (scripts/testenv.sh up builds it)"
fi
