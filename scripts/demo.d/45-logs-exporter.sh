# Logs and metrics of the deployed stack (step 30): the merged logs of
# every task, followed for a few seconds, then one scrape of the health
# exporter (Prometheus' exposition format) fed by the stack's Consul.
export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")

echo
echo "\$ microctl logs demo -f --tail 3 --timestamps    # followed for 5 seconds"
code=0
timeout -s INT 5 "$MICROCTL" logs demo -f --tail 3 --timestamps || code=$?
# timeout's own code (124) is the expected end of a follow cut short.
[ "$code" = 0 ] || [ "$code" = 124 ] || { echo "logs failed with exit code $code" >&2; exit 1; }

# Port 0: the exporter prints the address it got on stderr.
"$MICROCTL" health exporter --listen 127.0.0.1:0 --for 60s 2>"$DEMO_OUT/exporter.err" &
exporter=$!
url=
for _ in $(seq 100); do
	url=$(sed -n 's#^serving \(http://[^ ]*/metrics\).*#\1#p' "$DEMO_OUT/exporter.err")
	[ -n "$url" ] && curl -sf "${url%/metrics}/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
[ -n "$url" ] || { cat "$DEMO_OUT/exporter.err" >&2; kill "$exporter"; exit 1; }
echo
echo "\$ microctl health exporter --listen 127.0.0.1:0 &   curl -s $url    # the greeter's instances, and the requests made"
curl -sf "$url" >"$DEMO_OUT/metrics.txt"
# Filtered through files, not a pipe into head: with pipefail, head closing
# the pipe early would fail the step (SIGPIPE).
grep -E '^microctl_health_(instance_status|instance_ttl_seconds|instance_interval_seconds|service_instances)[{]' "$DEMO_OUT/metrics.txt" |
	grep 'go.micro.srv.greeter' >"$DEMO_OUT/metrics-greeter.txt" || true
head -n 14 "$DEMO_OUT/metrics-greeter.txt"
grep '^microctl_consul_requests_total' "$DEMO_OUT/metrics.txt"
kill -INT "$exporter"
wait "$exporter" || true
