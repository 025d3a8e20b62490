// Package compose turns compose files into what a Swarm stack is made of:
// service specs, networks, configs and secrets, and the depends_on order.
// It reads files and nothing else: it holds no Docker client and makes no
// engine call, so everything here is tested without an engine. pkg/stack
// compares its result with what runs and applies it.
package compose
