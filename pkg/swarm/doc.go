// Package swarm drives the Docker Engine: swarm lifecycle, overlay networks,
// compose files to Swarm services, convergence and rollback. Functions take
// the smallest Docker client interface they need, so tests can pass fakes
// that embed client.APIClient and override one method.
package swarm
