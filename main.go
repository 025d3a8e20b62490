// Command microctl operates a go-micro style deployment on Docker Swarm and Consul.
package main

import (
	"os"

	"github.com/microctl/microctl/cmd"
)

func main() {
	os.Exit(cmd.Execute())
}
