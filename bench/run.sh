#!/usr/bin/env bash
# bench/run.sh: the measurements behind docs/benchmarks.md ("microctl bench
# and serve"), in one command:
#
#   bench/run.sh                      # defaults: 3 rounds of 10s, -c 50
#   ROUNDS=5 DURATION=20s bench/run.sh
#
# 1. Clients. One target, `microctl serve --loops 1`, pinned to CPU
#    $SERVER_CPU; each client pinned to CPU $CLIENT_CPU, one after another,
#    in rotating order, ROUNDS times: microctl bench, wrk (Debian package),
#    bombardier and hey (go install at pinned versions), all with
#    -c $CONNS for $DURATION. For each: requests/s, client CPU time per
#    request and system calls per request, both counted by
#    `perf stat -e task-clock,raw_syscalls:sys_enter` over the whole client
#    process (strace -c -f is the fallback, and is said to be: it slows
#    the client down, so its req/s is then not comparable).
# 2. Rate accuracy: microctl bench -R at 95% of wrk's median maximum, with
#    -c $CONNS and with twice as many connections.
# 3. Memory: peak RSS of microctl bench (and of wrk, for reference) holding
#    $BIG_CONNS connections.
# 4. Servers. microctl serve, gnet v2 and net/http (bench/gnetserver,
#    bench/nethttpserver, this directory's own module), each pinned to
#    $SERVER_CPU with one loop/GOMAXPROCS 1, loaded by wrk on $CLIENT_CPU;
#    server CPU and system calls per request by perf stat -p.
#
# 5. HTTPS. microctl serve --tls --loops 1 (its throwaway certificate) on
#    $SERVER_CPU; microctl bench and wrk (Debian's links OpenSSL) on
#    $CLIENT_CPU, with keep-alive and with a new connection, so a new
#    handshake, per request (Connection: close).
#
# 6. HTTP/2 with prior knowledge (h2c). bench/nethttpserver -h2c (net/http's
#    own HTTP/2 server, GOMAXPROCS 1) on $SERVER_CPU; microctl bench --http2
#    and h2load (Debian package nghttp2-client) on $CLIENT_CPU, both with
#    -c $CONNS connections and $H2_STREAMS concurrent streams each.
#
# SECTIONS picks what to run (default: all): clients rate memory servers
# https h2; rate needs clients (it runs at 95% of wrk's rate there).
#
# The machine may be shared: for every round the script also measures the
# CPU that everything else used meanwhile ("background"); a round above
# BG_MAX percent of a CPU (default 15) is run again, up to RETRIES times.
#
# Results: a Markdown report on stdout and in $OUT/results.md, the raw
# output of every run beside it. Tools are cached outside the checkout in
# $TOOLS (hey, bombardier) and wrk is installed with apt-get when missing
# (root only). Traffic stays on 127.0.0.1; every run is bounded in time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
BIG_CONNS=${BIG_CONNS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
HEY_VERSION=v0.1.5
BOMBARDIER_VERSION=v1.2.6
CACHE=${MICROCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/microctl}
TOOLS=$CACHE/bench-tools
OUT=${BENCH_OUT:-/tmp/microctl-bench/$(date +%Y%m%d-%H%M%S)}
# Ports: free ones unless given. A fixed port once met a published
# container port (the demo stack's gateway on 18080): the load went to the
# gateway through docker-proxy while the report named microctl serve.
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 99))); do
		port_free "$p" && { echo "$p"; return; }
	done
	echo "bench: error: no free port in $1-$(($1 + 99))" >&2
	exit 1
}
PORT_TARGET=${PORT_TARGET:-$(free_port 28080)}
PORT_GNET=${PORT_GNET:-$(free_port 28180)}
PORT_NETHTTP=${PORT_NETHTTP:-$(free_port 28280)}
PORT_TLS=${PORT_TLS:-$(free_port 28380)}
PORT_H2=${PORT_H2:-$(free_port 28480)}
H2_STREAMS=${H2_STREAMS:-10}
# A round during which other processes used more than BG_MAX percent of a
# CPU is run again, up to RETRIES times (the machine is shared: compare like
# with like). The report shows each kept round's background.
BG_MAX=${BG_MAX:-15}
SECTIONS=${SECTIONS:-clients rate memory servers https h2}
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
RETRIES=${RETRIES:-3}

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

mkdir -p "$OUT" "$TOOLS/bin"
log "output in $OUT"

# ---- tools ------------------------------------------------------------------

command -v taskset >/dev/null || die "taskset is missing (Debian: util-linux)"
if ! command -v wrk >/dev/null; then
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "wrk is missing: apt-get install wrk"
	log "installing wrk (Debian package)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >"$OUT/apt.log" 2>&1 ||
		{ apt-get update -q >>"$OUT/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >>"$OUT/apt.log" 2>&1; } ||
		die "apt-get install wrk failed; see $OUT/apt.log"
fi
if want h2 && ! command -v h2load >/dev/null; then
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "h2load is missing: apt-get install nghttp2-client"
	log "installing h2load (Debian package nghttp2-client)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q nghttp2-client >>"$OUT/apt.log" 2>&1 ||
		{ apt-get update -q >>"$OUT/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nghttp2-client >>"$OUT/apt.log" 2>&1; } ||
		die "apt-get install nghttp2-client failed; see $OUT/apt.log"
fi
gotool() { # name module version
	local bin=$TOOLS/bin/$1-$3
	if [ ! -x "$bin" ]; then
		log "installing $2@$3 into $TOOLS"
		(cd "$TOOLS" && GOBIN=$TOOLS/tmp go install "$2@$3") >"$OUT/install-$1.log" 2>&1 ||
			die "go install $2@$3 failed; see $OUT/install-$1.log"
		mv "$TOOLS/tmp/$1" "$bin"
	fi
	echo "$bin"
}
HEY=$(gotool hey github.com/rakyll/hey $HEY_VERSION)
BOMBARDIER=$(gotool bombardier github.com/codesenberg/bombardier $BOMBARDIER_VERSION)

# How client CPU and system calls are counted.
COUNTER=none
if command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter,task-clock -o /dev/null true 2>/dev/null; then
	COUNTER=perf
elif command -v strace >/dev/null; then
	COUNTER=strace
fi
log "counting CPU and system calls with: $COUNTER"

log "building microctl, gnetserver, nethttpserver"
mkdir -p "$OUT/bin"
(cd "$ROOT" && go build -trimpath -o "$OUT/bin/microctl" .)
(cd "$ROOT/bench" && go build -trimpath -o "$OUT/bin/gnetserver" ./gnetserver && go build -trimpath -o "$OUT/bin/nethttpserver" ./nethttpserver)
MICROCTL=$OUT/bin/microctl

# 10,000 connections need as many descriptors, on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((BIG_CONNS + 100)) ] || log "warning: ulimit -n is $(ulimit -n), too low for $BIG_CONNS connections"

# ---- processes --------------------------------------------------------------

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {
	for _ in $(seq 1 100); do
		(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on 127.0.0.1:$1"
}

# start_server NAME PORT CMD...: run CMD pinned to the server CPU; sets SERVER_PID.
start_server() {
	local name=$1 port=$2
	shift 2
	port_free "$port" || die "127.0.0.1:$port is taken by another process (set PORT_TARGET, PORT_GNET or PORT_NETHTTP)"
	taskset -c "$SERVER_CPU" "$@" >"$OUT/server-$name.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	wait_port "$port"
	# Whatever answers on the port must be the server just started.
	kill -0 "$SERVER_PID" 2>/dev/null || die "$name exited at start: $(tail -n 3 "$OUT/server-$name.log" | tr '\n' ' ')"
	ss -Htlnp "sport = :$port" 2>/dev/null | grep -q "pid=$SERVER_PID," ||
		die "127.0.0.1:$port answers, but not from $name (pid $SERVER_PID)"
}

stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
}

# CPU time in ms: all CPUs busy (user, nice, system, steal) and one process
# (user + system). The difference over a run, less the client's and the
# server's own, is what else ran meanwhile: the noise. Interrupt and
# softirq time is left out: with IRQ time accounting the kernel charges the
# TCP receive path of our own loopback traffic there, to no process.
busy_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print ($2+$3+$4+$9) * 1000 / hz}' /proc/stat; }
proc_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15) * 1000 / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# background _ BUSY0 SRV0 T0 CLIENT_MS: percent of one CPU used by other
# processes since BUSY0/SRV0/T0.
background() {
	local busy1 srv1 t1
	busy1=$(busy_ms)
	srv1=$(proc_ms "$SERVER_PID")
	t1=$(now_ms)
	awk -v b0="$2" -v b1="$busy1" -v s0="$3" -v s1="$srv1" -v t0="$4" -v t1="$t1" -v c="$5" \
		'BEGIN {o = (b1-b0) - (s1-s0) - (c=="nan" ? 0 : c); if (o < 0) o = 0; printf "%.0f", 100 * o / (t1-t0)}'
}

# quiet BG: whether a round's background is low enough to keep it.
quiet() {
	[ "$1" = nan ] && return 0
	[ "$1" -le "$BG_MAX" ] && return 0
	log "  background $1% of a CPU > $BG_MAX%: noisy round, running it again"
	return 1
}

# measure NAME CMD...: run CMD pinned to the client CPU, counting its CPU
# time (ms) and system calls; output in $OUT/NAME.out, counts in
# $OUT/NAME.count as "cpu_ms syscalls".
measure() {
	local name=$1 b0 s0 t0
	shift
	b0=$(busy_ms)
	s0=$(proc_ms "$SERVER_PID")
	t0=$(now_ms)
	case $COUNTER in
	perf)
		perf stat -x, -e raw_syscalls:sys_enter,task-clock -o "$OUT/$name.perf" \
			taskset -c "$CLIENT_CPU" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
		local sc ms
		sc=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$OUT/$name.perf")
		ms=$(awk -F, '/task-clock/ {print $1}' "$OUT/$name.perf")
		echo "$ms $sc $(background x "$b0" "$s0" "$t0" "$ms")" >"$OUT/$name.count"
		;;
	strace)
		strace -f -c -o "$OUT/$name.strace" taskset -c "$CLIENT_CPU" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
		local sc
		sc=$(awk '/^[ ]*100.00/ {print $4}' "$OUT/$name.strace")
		echo "nan ${sc:-nan} nan" >"$OUT/$name.count"
		;;
	*)
		taskset -c "$CLIENT_CPU" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
		echo "nan nan nan" >"$OUT/$name.count"
		;;
	esac
}

# Requests completed and req/s from each tool's output: "requests rps".
parse_result() { # tool file
	case $1 in
	microctl)
		awk '/^  "requests":/ {gsub(/[^0-9]/, "", $2); n=$2} /^  "requests_per_sec":/ {gsub(/,/, "", $2); r=$2} END {print n, r}' "$2"
		;;
	wrk)
		awk '/requests in/ {n=$1} /^Requests\/sec:/ {r=$2} END {print n, r}' "$2"
		;;
	bombardier)
		# One line of JSON: 2xx responses over the time taken.
		local n t
		n=$(grep -o '"req2xx":[0-9]*' "$2" | cut -d: -f2)
		t=$(grep -o '"timeTakenSeconds":[0-9.]*' "$2" | cut -d: -f2)
		awk -v n="$n" -v t="$t" 'BEGIN {printf "%d %.2f\n", n, n / t}'
		;;
	hey)
		awk '/Requests\/sec:/ {r=$2} /\[200\]/ {n=$2} END {print n, r}' "$2"
		;;
	h2load)
		# "finished in 10.00s, 59183.60 req/s, ..." and "requests: N total,
		# ..., S succeeded, ...": succeeded requests, as microctl counts.
		awk '/^finished in/ {r=$4} /^requests:/ {for (i=1;i<NF;i++) if ($(i+1) ~ /^succeeded/) n=$i} END {print n, r}' "$2"
		;;
	esac
}

secs() { # 10s -> 10
	local d=$1
	case $d in
	*ms) awk -v v="${d%ms}" 'BEGIN {print v / 1000}' ;;
	*s) echo "${d%s}" ;;
	*m) echo $((${d%m} * 60)) ;;
	*) echo "$d" ;;
	esac
}

client_cmd() { # tool url conns duration
	case $1 in
	microctl) echo "$MICROCTL bench -c $3 -d $4 -t 1 --timeout 5s -o json $2" ;;
	wrk) echo "wrk -t 1 -c $3 -d $4 --timeout 5s $2" ;;
	bombardier) echo "$BOMBARDIER -c $3 -d $4 -t 5s -p r -o j $2" ;;
	hey) echo "$HEY -c $3 -z $4 -t 5 $2" ;;
	esac
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }

# ---- 1. clients -------------------------------------------------------------

URL=http://127.0.0.1:$PORT_TARGET/
CLIENTS=(microctl wrk bombardier hey)
{
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go: $(go version | cut -d' ' -f3), wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), hey $HEY_VERSION, bombardier $BOMBARDIER_VERSION"
	echo "microctl: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (modified)')"
} >"$OUT/machine.txt"

want rate && ! want clients && die "SECTIONS: rate needs clients"
if want clients || want memory; then
	start_server target "$PORT_TARGET" "$MICROCTL" serve --addr "127.0.0.1:$PORT_TARGET" --loops 1
	TARGET_PID=$SERVER_PID
fi
: >"$OUT/clients.tsv"
want clients && log "clients: target microctl serve on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, -c $CONNS, $DURATION, $ROUNDS rounds"
want clients && for round in $(seq 1 "$ROUNDS"); do
	# Rotate the order so no client always runs first (or last).
	for k in 0 1 2 3; do
		tool=${CLIENTS[$(((k + round - 1) % 4))]}
		name=client-$tool-$round
		for attempt in $(seq 1 "$RETRIES"); do
			log "round $round: $tool"
			# shellcheck disable=SC2046
			measure "$name" $(client_cmd "$tool" "$URL" "$CONNS" "$DURATION")
			read -r ms sc bg <"$OUT/$name.count"
			sleep 1
			quiet "$bg" && break
		done
		read -r n rps < <(parse_result "$tool" "$OUT/$name.out")
		echo -e "$round\t$tool\t$n\t$rps\t$ms\t$sc\t$bg" >>"$OUT/clients.tsv"
	done
done

# ---- 2. rate accuracy -------------------------------------------------------

WRK_MAX=$(awk -F'\t' '$2=="wrk" {print $4}' "$OUT/clients.tsv" | median)
RATE=$(awk -v m="$WRK_MAX" 'BEGIN {printf "%d", 0.95 * m}')
: >"$OUT/rate.tsv"
# With -c $CONNS and one request in flight per connection, the rate cannot
# exceed $CONNS / round-trip time (Little's law), and near the server's
# capacity the round trip grows: at 95% of the maximum, the connections
# themselves, not the client's CPU, are the limit. The second row of each
# round gives the same rate twice the connections, and the client's CPU
# utilisation shows whether the client had room.
want rate && for round in $(seq 1 "$ROUNDS"); do
	for conns in "$CONNS" $((2 * CONNS)); do
		name=rate-$round-c$conns
		for attempt in $(seq 1 "$RETRIES"); do
			log "rate, round $round: microctl bench -c $conns -R $RATE (95% of wrk's median $WRK_MAX req/s)"
			measure "$name" "$MICROCTL" bench -c "$conns" -d "$DURATION" -t 1 -R "$RATE" -o json "$URL"
			read -r ms _ bg <"$OUT/$name.count"
			sleep 1
			quiet "$bg" && break
		done
		f=$OUT/$name.out
		achieved=$(awk '/"achieved":/ {gsub(/,/, "", $2); print $2}' "$f")
		p99=$(awk '/^  "latency":/ {l=1} l && /"p99_us":/ {gsub(/,/, "", $2); print $2; exit}' "$f")
		p99u=$(awk '/^  "latency_uncorrected":/ {l=1} l && /"p99_us":/ {gsub(/,/, "", $2); print $2; exit}' "$f")
		elapsed=$(awk '/^  "elapsed_s":/ {gsub(/,/, "", $2); print $2}' "$f")
		busy=$(awk -v ms="$ms" -v e="$elapsed" 'BEGIN {if (ms=="nan" || e<=0) print "nan"; else printf "%.0f", ms / 10 / e}')
		echo -e "$round\t$conns\t$achieved\t$p99\t$p99u\t$busy\t$bg" >>"$OUT/rate.tsv"
	done
done

# ---- 3. memory with many connections ---------------------------------------

peak_rss() { # name cmd...: peak RSS in KiB of cmd, pinned to the client CPU
	local name=$1
	shift
	taskset -c "$CLIENT_CPU" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
	local pid=$! peak=0 v
	while kill -0 "$pid" 2>/dev/null; do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
		sleep 0.2
	done
	wait "$pid" || true
	echo "$peak"
}
if want memory; then
	log "memory: $BIG_CONNS connections"
	RSS_MICROCTL=$(peak_rss rss-microctl "$MICROCTL" bench -c "$BIG_CONNS" -d "$DURATION" -t 1 --timeout 10s -o json "$URL")
	RSS_MICROCTL_CONNS=$(awk '/^  "connects":/ {gsub(/,/, "", $2); print $2}' "$OUT/rss-microctl.out")
	RSS_WRK=$(peak_rss rss-wrk wrk -t 1 -c "$BIG_CONNS" -d "$DURATION" --timeout 10s "$URL")
fi
if want clients || want memory; then
	stop_server
fi

# ---- 4. servers -------------------------------------------------------------

SERVERS=(microctl gnet nethttp)
SERVER_PID=$$
server_cmd() {
	case $1 in
	microctl) echo "$PORT_TARGET $MICROCTL serve --addr 127.0.0.1:$PORT_TARGET --loops 1" ;;
	gnet) echo "$PORT_GNET $OUT/bin/gnetserver -addr 127.0.0.1:$PORT_GNET -loops 1" ;;
	nethttp) echo "$PORT_NETHTTP $OUT/bin/nethttpserver -addr 127.0.0.1:$PORT_NETHTTP" ;;
	esac
}
want servers && log "servers: each on CPU $SERVER_CPU, loaded by wrk -c $CONNS on CPU $CLIENT_CPU, $ROUNDS rounds"
: >"$OUT/servers.tsv"
want servers && for round in $(seq 1 "$ROUNDS"); do
	for k in 0 1 2; do
		srv=${SERVERS[$(((k + round - 1) % 3))]}
		name=server-$srv-$round
		for attempt in $(seq 1 "$RETRIES"); do
			log "round $round: $srv"
			# shellcheck disable=SC2046
			set -- $(server_cmd "$srv")
			port=$1
			shift
			start_server "$srv" "$port" "$@"
			sleep 0.5
			if [ "$COUNTER" = perf ]; then
				perf stat -x, -e raw_syscalls:sys_enter,task-clock -p "$SERVER_PID" -o "$OUT/$name.perf" &
				PERF_PID=$!
				sleep 0.2
			fi
			# wrk is measured too, so that the background is what is left.
			measure "$name" wrk -t 1 -c "$CONNS" -d "$DURATION" --timeout 5s "http://127.0.0.1:$port/"
			read -r _ _ bg <"$OUT/$name.count"
			ms=nan sc=nan
			if [ "$COUNTER" = perf ]; then
				kill -INT "$PERF_PID"
				wait "$PERF_PID" 2>/dev/null || true
				sc=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$OUT/$name.perf")
				ms=$(awk -F, '/task-clock/ {print $1}' "$OUT/$name.perf")
			fi
			stop_server
			sleep 1
			quiet "$bg" && break
		done
		read -r n rps < <(parse_result wrk "$OUT/$name.out")
		echo -e "$round\t$srv\t$n\t$rps\t$ms\t$sc\t$bg" >>"$OUT/servers.tsv"
	done
done

# ---- 5. https ---------------------------------------------------------------

: >"$OUT/https.tsv"
: >"$OUT/https-close.tsv"
if want https; then
	log "https: microctl serve --tls on CPU $SERVER_CPU; microctl bench and wrk on CPU $CLIENT_CPU, keep-alive and Connection: close"
	start_server tls "$PORT_TLS" "$MICROCTL" serve --tls --addr "127.0.0.1:$PORT_TLS" --loops 1
	CERT=$(grep -o '/[^ ]*\.pem' "$OUT/server-tls.log" | head -1)
	[ -n "$CERT" ] || die "microctl serve --tls named no certificate file; see $OUT/server-tls.log"
	URL_TLS=https://127.0.0.1:$PORT_TLS/
	HTTPS_TOOLS=(microctl wrk)
	for round in $(seq 1 "$ROUNDS"); do
		for mode in keepalive close; do
			tsv=$OUT/https.tsv
			hdr=()
			if [ "$mode" = close ]; then
				tsv=$OUT/https-close.tsv
				hdr=(-H "Connection: close")
			fi
			for k in 0 1; do
				tool=${HTTPS_TOOLS[$(((k + round - 1) % 2))]}
				name=https-$mode-$tool-$round
				for attempt in $(seq 1 "$RETRIES"); do
					log "round $round: https $mode $tool"
					if [ "$tool" = microctl ]; then
						measure "$name" "$MICROCTL" bench -c "$CONNS" -d "$DURATION" -t 1 --timeout 5s --cacert "$CERT" "${hdr[@]}" -o json "$URL_TLS"
					else
						measure "$name" wrk -t 1 -c "$CONNS" -d "$DURATION" --timeout 5s "${hdr[@]}" "$URL_TLS"
					fi
					read -r ms sc bg <"$OUT/$name.count"
					sleep 1
					quiet "$bg" && break
				done
				read -r n rps < <(parse_result "$tool" "$OUT/$name.out")
				echo -e "$round\t$tool\t$n\t$rps\t$ms\t$sc\t$bg" >>"$tsv"
			done
		done
	done
	stop_server
fi

# ---- 6. HTTP/2 (h2c) ----------------------------------------------------------

: >"$OUT/h2.tsv"
if want h2; then
	log "h2: bench/nethttpserver -h2c on CPU $SERVER_CPU; microctl bench --http2 and h2load on CPU $CLIENT_CPU, -c $CONNS, $H2_STREAMS streams each"
	GOMAXPROCS=1 start_server h2 "$PORT_H2" "$OUT/bin/nethttpserver" -h2c -addr "127.0.0.1:$PORT_H2"
	URL_H2=http://127.0.0.1:$PORT_H2/
	H2_TOOLS=(microctl h2load)
	for round in $(seq 1 "$ROUNDS"); do
		for k in 0 1; do
			tool=${H2_TOOLS[$(((k + round - 1) % 2))]}
			name=h2-$tool-$round
			for attempt in $(seq 1 "$RETRIES"); do
				log "round $round: h2 $tool"
				if [ "$tool" = microctl ]; then
					measure "$name" "$MICROCTL" bench --http2 --streams "$H2_STREAMS" -c "$CONNS" -d "$DURATION" -t 1 --timeout 5s -o json "$URL_H2"
				else
					measure "$name" h2load -c "$CONNS" -m "$H2_STREAMS" -t 1 -D "$(secs "$DURATION")" "$URL_H2"
				fi
				read -r ms sc bg <"$OUT/$name.count"
				sleep 1
				quiet "$bg" && break
			done
			read -r n rps < <(parse_result "$tool" "$OUT/$name.out")
			echo -e "$round\t$tool\t$n\t$rps\t$ms\t$sc\t$bg" >>"$OUT/h2.tsv"
		done
	done
	stop_server
fi

# ---- report -----------------------------------------------------------------

per_req() { # tsv tool column(5=ms,6=syscalls): median per request
	awk -F'\t' -v t="$2" -v c="$3" '$2==t && $c!="nan" && $3>0 {print (c==5 ? $5*1000/$3 : $6/$3)}' "$1" | median
}
rps_of() { awk -F'\t' -v t="$2" '$2==t {print $4}' "$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b>0) printf "%.2fx", a/b; else print "n/a"}'; }
fmt() { awk -v v="$1" 'BEGIN {if (v=="nan") print "n/a"; else printf "%.'"${2:-0}"'f", v}'; }

# compare_tables TSV KIND NOTE NAME...: the medians table (req/s, microctl's
# ratio, CPU and system calls per request) and the per-round table of the
# tools NAME... in TSV; KIND is "client" or "server", NOTE explains the
# background column.
compare_tables() {
	local tsv=$1 kind=$2 note=$3
	shift 3
	local names=("$@") mine r t row round seps=""
	for _ in "${names[@]}"; do seps="$seps---:|"; done
	echo "| $kind | req/s | microctl $([ "$kind" = client ] && echo bench || echo serve) vs it | $kind CPU µs/request | syscalls/request |"
	echo "|---|---:|---:|---:|---:|"
	mine=$(rps_of "$tsv" microctl)
	for t in "${names[@]}"; do
		r=$(rps_of "$tsv" "$t")
		echo "| $t | $(fmt "$r") | $(ratio "$mine" "$r") | $(fmt "$(per_req "$tsv" "$t" 5)" 2) | $(fmt "$(per_req "$tsv" "$t" 6)" 2) |"
	done
	echo
	echo "Per round: req/s (background: % of a CPU used by anything else$note)."
	echo
	echo "| round | $(IFS='|'; echo "${names[*]}" | sed 's/|/ | /g') |"
	echo "|---|$seps"
	for round in $(seq 1 "$ROUNDS"); do
		row="| $round"
		for t in "${names[@]}"; do
			row="$row | $(awk -F'\t' -v r="$round" -v t="$t" '$1==r && $2==t {printf "%.0f (bg %s%%)", $4, $7}' "$tsv")"
		done
		echo "$row |"
	done
}

{
	echo "## microctl bench and serve: measured $(date -u +%Y-%m-%d)"
	echo
	sed 's/^/    /' "$OUT/machine.txt"
	echo
	echo "Command: \`bench/run.sh\` (DURATION=$DURATION CONNS=$CONNS ROUNDS=$ROUNDS SECTIONS=\"$SECTIONS\"); medians over the rounds."
	echo "CPU and system calls counted with: $COUNTER$([ "$COUNTER" = strace ] && echo ' (slows the client: req/s not comparable)')."
	echo
	if want clients; then
	echo "### Clients against one target (microctl serve --loops 1 on CPU $SERVER_CPU; client on CPU $CLIENT_CPU; -c $CONNS, $DURATION)"
	echo
	compare_tables "$OUT/clients.tsv" client " during the run; a round above $BG_MAX% was run again, up to $RETRIES times" "${CLIENTS[@]}"
	echo
	fi
	if want rate; then
	echo "### Constant rate (-R) at 95% of wrk's maximum"
	echo
	echo "| round | connections | target req/s | achieved req/s | achieved/target | p99 corrected | p99 uncorrected | client CPU busy | background |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	while IFS=$'\t' read -r round conns achieved p99 p99u busy bg; do
		echo "| $round | $conns | $RATE | $(fmt "$achieved" 1) | $(awk -v a="$achieved" -v t="$RATE" 'BEGIN {printf "%.4f", a/t}') | $(fmt "$p99") µs | $(fmt "$p99u") µs | $busy% | $bg% |"
	done <"$OUT/rate.tsv"
	echo
	fi
	if want memory; then
	echo "### Memory with $BIG_CONNS connections (peak RSS, VmHWM)"
	echo
	echo "| client | peak RSS |"
	echo "|---|---:|"
	echo "| microctl bench ($RSS_MICROCTL_CONNS connections established) | $(awk -v k="$RSS_MICROCTL" 'BEGIN {printf "%.1f MiB", k/1024}') |"
	echo "| wrk | $(awk -v k="$RSS_WRK" 'BEGIN {printf "%.1f MiB", k/1024}') |"
	echo
	fi
	if want servers; then
	echo "### Servers under the same load (wrk -t 1 -c $CONNS on CPU $CLIENT_CPU; server on CPU $SERVER_CPU, one loop)"
	echo
	compare_tables "$OUT/servers.tsv" server "" "${SERVERS[@]}"
	echo
	fi
	if want https; then
	echo "### HTTPS, keep-alive (microctl serve --tls --loops 1 on CPU $SERVER_CPU; client on CPU $CLIENT_CPU; -c $CONNS, $DURATION)"
	echo
	compare_tables "$OUT/https.tsv" client " during the run" "${HTTPS_TOOLS[@]}"
	echo
	echo "### HTTPS, a new connection and handshake per request (Connection: close)"
	echo
	compare_tables "$OUT/https-close.tsv" client " during the run" "${HTTPS_TOOLS[@]}"
	echo
	fi
	if want h2; then
	echo "### HTTP/2 with prior knowledge (bench/nethttpserver -h2c, GOMAXPROCS 1, on CPU $SERVER_CPU; client on CPU $CLIENT_CPU; -c $CONNS, $H2_STREAMS streams each, $DURATION)"
	echo
	compare_tables "$OUT/h2.tsv" client " during the run" "${H2_TOOLS[@]}"
	echo
	fi
	echo "Raw output: $OUT"
} | tee "$OUT/results.md"
