//go:build !unix

package bench

// EnsureDescriptors has no limit to raise on this system.
func EnsureDescriptors(need uint64) (uint64, error) { return need, nil }
