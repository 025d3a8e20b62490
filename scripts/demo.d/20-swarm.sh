# A swarm with the overlay network go-micro services share. `swarm init` is
# idempotent: on an engine that already manages a swarm it reports it and
# creates the micro network only if it is missing. The demo's swarm is a
# single node on loopback, like the test environment's.
run swarm init --advertise-addr 127.0.0.1
run swarm status
run network inspect micro
