# The whole deployment in one look: the swarm, the micro network, the
# stack's Consul, its registry and its key ring.
export CONSUL_HTTP_ADDR=$(cat "$DEMO_OUT/stack-consul-addr")
run doctor
