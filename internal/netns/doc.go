// Package netns builds a lab of Docker Engines for multi-node swarm tests:
// each engine runs in a network namespace of its own (and a UTS namespace,
// so each has its own hostname), with its own data-root, exec-root,
// pidfile and socket; the namespaces are wired by veth pairs to a bridge
// that lives in a hub namespace of its own. Nothing touches the host's
// network: no interface, route or iptables rule is added to it, and the
// host's Docker Engine is never involved.
//
// It needs root, iproute2 (ip), util-linux (nsenter, unshare) and dockerd.
// A lab writes a manifest in its directory; Close undoes everything from
// it, and Sweep undoes labs whose owner process died without closing.
package netns
