// Package swarm drives the Docker Engine as a swarm: init, join, leave,
// join tokens, nodes, status, the overlay networks services share, and the
// doctor probes for them. Stacks (compose files deployed as services) are
// pkg/stack's business; this package never imports it. Functions take the
// smallest Docker client interface they need, so tests can pass fakes that
// embed client.APIClient and override one method.
package swarm
