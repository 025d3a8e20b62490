# A swarm with the overlay network go-micro services share. `swarm init` is
# idempotent: on the test environment's engine, already a manager, it
# reports the swarm and creates the micro network only if it is missing.
run swarm init
run swarm status
run network inspect micro
