#!/usr/bin/env bash
# The cluster lab: three Docker Engines n1 n2 n3, each in a network
# namespace of its own (internal/netns), a swarm of them (n1 manager, n2 n3
# workers, joined with `microctl swarm init/join`), the `micro` overlay
# across them and the project's images on every node. Needs root.
#
#   scripts/cluster.sh up [--managers 3]  make the lab, or complete the one there
#                                         (stopped engines started, cut links healed)
#   scripts/cluster.sh env                export lines: eval "$(scripts/cluster.sh env)"
#   scripts/cluster.sh status             nodes, engines, links; exit 3 if not whole
#   scripts/cluster.sh stop-node NODE     kill the node's engine and containers (a power cut)
#   scripts/cluster.sh start-node NODE    start its engine again on its old state
#   scripts/cluster.sh partition-node NODE  cut its link; its containers keep running
#   scripts/cluster.sh heal-node NODE     put its link back
#   scripts/cluster.sh down               remove everything the lab made
#
# The work is done by internal/netns/cmd/mctl-lab (the package the lab's
# tests use too); this script builds it and microctl into bin/ first.
# Images come from the local engine: run `make images` before `up`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin
cd "$ROOT"
mkdir -p "$BIN"
# Rebuilt when any Go file is newer: cheap when nothing changed.
if [ ! -x "$BIN/mctl-lab" ] || [ -n "$(find internal/netns -name '*.go' -newer "$BIN/mctl-lab" | head -1)" ]; then
	go build -o "$BIN/mctl-lab" ./internal/netns/cmd/mctl-lab
fi
if [ "${1:-}" = up ]; then
	[ -x "$BIN/microctl" ] || go build -buildvcs=auto -trimpath -o "$BIN/microctl" .
	shift
	exec "$BIN/mctl-lab" up --microctl "${MICROCTL:-$BIN/microctl}" "$@"
fi
exec "$BIN/mctl-lab" "$@"
