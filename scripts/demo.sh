#!/usr/bin/env bash
# `make demo`: run microctl against the test environment, one step per file
# in scripts/demo.d (NN-name.sh, in order). Each issue adds its own step.
# Steps see $MICROCTL (the built binary), $DEMO_OUT (a directory for reports)
# and the test environment's CONSUL_HTTP_ADDR; they run with `set -euo pipefail`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MICROCTL=${MICROCTL:-$ROOT/bin/microctl}
export DEMO_OUT=${DEMO_OUT:-${TMPDIR:-/tmp}/microctl-demo}
mkdir -p "$DEMO_OUT"
[ -x "$MICROCTL" ] || { echo "demo: $MICROCTL is missing: run make build" >&2; exit 1; }

# run prints a command the way a user would type it, then runs it.
run() {
	echo
	echo "\$ microctl ${*}"
	"$MICROCTL" "$@"
}
export -f run

for step in "$ROOT"/scripts/demo.d/*.sh; do
	[ -e "$step" ] || continue
	echo
	echo "=== $(basename "$step" .sh)"
	MICROCTL=$MICROCTL bash -euo pipefail "$step"
done
echo
echo "demo: done (reports in $DEMO_OUT)"
