//go:build !linux

// Command mctl-lab needs Linux (network namespaces).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "mctl-lab: needs Linux (network namespaces)")
	os.Exit(1)
}
