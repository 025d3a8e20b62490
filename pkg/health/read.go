package health

import (
	"context"
	"fmt"

	"github.com/microctl/microctl/pkg/registry"
)

// Snapshot is the catalog at one moment, built into instances.
type Snapshot struct {
	Catalog   *registry.Catalog
	Instances []Instance
	// Warnings are things a person should know that did not stop the read:
	// malformed tags or Meta, results hidden by ACLs.
	Warnings []string
}

// Read reads the whole catalog in a constant number of requests and builds
// the instances of opts.Services (all when empty). A service in
// opts.Services that does not exist is an UnknownServiceError; a catalog
// the token may see nothing of is a PermissionError naming what it lacks.
func Read(ctx context.Context, src CatalogReader, opts Options) (*Snapshot, error) {
	cat, err := src.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	if cat.Filtered.Any() && len(cat.Instances) == 0 {
		return nil, registry.FilteredError(addrOf(src), cat.Filtered)
	}
	if err := CheckServices(opts.Services, cat.ServiceNames(), cat.Filtered.Any()); err != nil {
		return nil, err
	}
	s := &Snapshot{Catalog: cat, Instances: Build(cat, opts)}
	if cat.Filtered.Any() {
		s.Warnings = append(s.Warnings, "some results were hidden by ACLs: the token lacks node:read or service:read on some nodes or services")
	}
	s.Warnings = append(s.Warnings, InstanceWarnings(s.Instances)...)
	return s, nil
}

// InstanceWarnings lists each instance's warnings with the instance named.
func InstanceWarnings(instances []Instance) []string {
	var out []string
	for _, in := range instances {
		for _, w := range in.Warnings {
			out = append(out, fmt.Sprintf("instance %s of %s: %s", in.ID, quote(in.Service), w))
		}
	}
	return out
}

func addrOf(src any) string {
	if c, ok := src.(*registry.Client); ok {
		return c.Addr
	}
	return "?"
}
