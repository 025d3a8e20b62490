// Package registry is microctl's access to Consul: the client, errors a
// person can act on, catalog and health reads, the go-micro tag codec and KV
// helpers. Packages that analyse what Consul knows (pkg/health, pkg/keys)
// build on it; it imports nothing else of microctl's.
package registry
