#!/usr/bin/env bash
# The test environment: a Docker Engine and a Consul dev agent on 127.0.0.1.
#
#   scripts/testenv.sh up [--swarm]  start what is missing, reuse what already runs;
#                                    --swarm also makes this engine a single-node swarm
#                                    manager when it is in none
#   scripts/testenv.sh env           print export lines: eval "$(scripts/testenv.sh env)"
#   scripts/testenv.sh exec CMD...   run CMD with that environment
#   scripts/testenv.sh status        say what runs
#   scripts/testenv.sh down          stop only what `up` started
#
# Docker: the engine that answers (DOCKER_HOST or the default socket) is used.
# When none answers and this is a root shell with apt-get, Debian's docker.io
# is installed and dockerd started in the background (log: $STATE/dockerd.log).
#
# Consul has no Debian package and `go install` cannot build it (its go.mod has
# replace directives), so tools/go.mod builds it as a Go tool. The binary is
# cached outside the checkout ($CACHE/consul-$CONSUL_VERSION/consul) so fresh
# clones and CI reuse it; the first build takes 3-5 minutes and ~2.3 GB RAM.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONSUL_VERSION=v1.20.1
CACHE=${MICROCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/microctl}
STATE=$CACHE/testenv
# Static (CGO_ENABLED=0): the same binary runs on the host and in a FROM-scratch image.
CONSUL_DIR=$CACHE/consul-$CONSUL_VERSION-static
CONSUL_BIN=$CONSUL_DIR/consul

log() { echo "testenv: $*" >&2; }
die() { echo "testenv: error: $*" >&2; exit 1; }

# wait_up NAME CHECK TRIES DELAY: wait until CHECK succeeds while the
# process in $STATE/NAME.pid lives; fail with the end of its log otherwise.
wait_up() {
	local name=$1 check=$2 tries=$3 delay=$4
	for _ in $(seq 1 "$tries"); do
		"$check" && return 0
		kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null ||
			die "$name exited; last lines of $STATE/$name.log: $(tail -n 5 "$STATE/$name.log" | tr '\n' ' ')"
		sleep "$delay"
	done
	die "$name did not come up in time; see $STATE/$name.log"
}

mkdir -p "$STATE"

# ---- Docker ---------------------------------------------------------------

docker_ok() { timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

docker_up() {
	if command -v docker >/dev/null && docker_ok; then
		log "docker: using the engine at ${DOCKER_HOST:-unix:///var/run/docker.sock} ($(docker info --format '{{.ServerVersion}}'))"
		return
	fi
	[ -z "${DOCKER_HOST:-}" ] || die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to let testenv start a local engine"
	# A dockerd that is still starting (a boot, a restart) is waited for,
	# not doubled: a second one would die on the first one's pidfile.
	if command -v docker >/dev/null && command -v pgrep >/dev/null && pgrep -x dockerd >/dev/null; then
		log "docker: dockerd is running but not answering yet; waiting for it"
		for _ in $(seq 1 60); do
			docker_ok && { log "docker: engine up"; return; }
			sleep 1
		done
		die "dockerd runs (pid $(pgrep -x dockerd | head -1)) but does not answer on ${DOCKER_HOST:-unix:///var/run/docker.sock}"
	fi
	if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
		[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
			die "no Docker Engine answers and this shell cannot install one (needs root and apt-get): install docker.io"
		log "docker: installing Debian's docker.io (log: $STATE/apt.log)"
		{ DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io; } >"$STATE/apt.log" 2>&1 ||
			die "apt-get install docker.io failed; see $STATE/apt.log"
	fi
	log "docker: starting dockerd (log: $STATE/dockerd.log)"
	nohup dockerd >"$STATE/dockerd.log" 2>&1 9>&- &
	echo $! >"$STATE/dockerd.pid"
	wait_up dockerd docker_ok 60 1
	log "docker: engine up"
}

swarm_up() {
	local state
	state=$(docker info --format '{{.Swarm.LocalNodeState}}')
	case "$state" in
	active) log "swarm: this engine is already in a swarm; leaving it as it is" ;;
	inactive)
		log "swarm: initialising a single-node swarm (advertise 127.0.0.1)"
		docker swarm init --advertise-addr 127.0.0.1 >/dev/null
		touch "$STATE/swarm.created"
		;;
	*) die "swarm: this engine's swarm state is '$state'; fix it by hand (docker swarm leave --force?)" ;;
	esac
}

# ---- Consul ---------------------------------------------------------------

consul_addr() { cat "$STATE/consul.addr" 2>/dev/null || true; }

consul_ok() {
	local addr
	addr=$(consul_addr)
	[ -n "$addr" ] && [ -f "$STATE/consul.pid" ] && kill -0 "$(cat "$STATE/consul.pid")" 2>/dev/null &&
		curl -fsS --max-time 2 "http://$addr/v1/status/leader" 2>/dev/null | grep -q '"[^"]\+"'
}

consul_build() {
	if [ -x "$CONSUL_BIN" ] && "$CONSUL_BIN" version 2>/dev/null | grep -q "Consul ${CONSUL_VERSION}"; then
		return
	fi
	command -v go >/dev/null || die "go is needed to build Consul"
	log "consul: building $CONSUL_VERSION from its Go module into $CONSUL_BIN (first time only: 3-5 minutes)"
	mkdir -p "$CONSUL_DIR"
	(cd "$ROOT/tools" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w" -o "$CONSUL_BIN.tmp" github.com/hashicorp/consul) >"$STATE/consul-build.log" 2>&1 ||
		die "building Consul failed; see $STATE/consul-build.log"
	mv -f "$CONSUL_BIN.tmp" "$CONSUL_BIN"
}

port_free() { ! ss -Htuln "sport = :$1" 2>/dev/null | grep -q .; }

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 20000))
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free port found"
}

consul_up() {
	if consul_ok; then
		log "consul: reusing the agent at $(consul_addr)"
		return
	fi
	consul_build
	local http server serf
	# The well-known port when it is free, so a user's shell needs no
	# CONSUL_HTTP_ADDR; any free port otherwise.
	if port_free 8500; then http=8500; else http=$(free_port); fi
	server=$(free_port)
	serf=$(free_port)
	log "consul: starting a dev agent on 127.0.0.1:$http (log: $STATE/consul.log)"
	nohup "$CONSUL_BIN" agent -dev -node microctl-testenv \
		-bind 127.0.0.1 -client 127.0.0.1 \
		-http-port "$http" -server-port "$server" -serf-lan-port "$serf" \
		-serf-wan-port -1 -dns-port -1 -grpc-port -1 -grpc-tls-port -1 \
		>"$STATE/consul.log" 2>&1 9>&- </dev/null &
	echo $! >"$STATE/consul.pid"
	echo "127.0.0.1:$http" >"$STATE/consul.addr"
	wait_up consul consul_ok 60 0.5
	log "consul: leader elected"
}

# ---- commands -------------------------------------------------------------

print_env() {
	local addr
	addr=$(consul_addr)
	[ -n "$addr" ] || die "the test environment is not up: run scripts/testenv.sh up"
	echo "export CONSUL_HTTP_ADDR=$addr"
	echo "export MICROCTL_CONSUL_BIN=$CONSUL_BIN"
	echo "export PATH=$CONSUL_DIR:\$PATH"
}

stop_pid() {
	local name=$1 file=$STATE/$1.pid pid
	[ -f "$file" ] || return 0
	pid=$(cat "$file")
	if kill -0 "$pid" 2>/dev/null; then
		log "$name: stopping (pid $pid)"
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$file"
}

cmd=${1:-}
shift || true
case "$cmd" in
up)
	swarm=0
	for a in "$@"; do
		case "$a" in
		--swarm) swarm=1 ;;
		*) die "unknown option $a (usage: testenv.sh up [--swarm])" ;;
		esac
	done
	# One `up` at a time: two test runs starting at once must not start two agents.
	exec 9>"$STATE/lock"
	flock 9
	docker_up
	[ "$swarm" = 0 ] || swarm_up
	consul_up
	;;
env) print_env ;;
exec)
	[ $# -gt 0 ] || die "usage: testenv.sh exec CMD [ARGS...]"
	eval "$(print_env)"
	exec "$@"
	;;
status)
	if docker_ok; then echo "docker: up ($(docker info --format '{{.ServerVersion}}, swarm {{.Swarm.LocalNodeState}}'))"; else echo "docker: down"; fi
	if consul_ok; then echo "consul: up at $(consul_addr)"; else echo "consul: down"; fi
	;;
down)
	stop_pid consul
	rm -f "$STATE/consul.addr"
	if [ -f "$STATE/swarm.created" ]; then
		log "swarm: leaving the swarm that up created"
		docker swarm leave --force >/dev/null 2>&1 || true
		rm -f "$STATE/swarm.created"
	fi
	stop_pid dockerd
	;;
*)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
