package stack

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// What the engine would refuse at service create is checked while
// planning, before anything is created: a deploy the engine refuses half
// way leaves what it created behind.

// ValidateImage checks an image reference's syntax as the engine parses it
// (lower-case repository, valid tag and digest).
func ValidateImage(image string) error {
	if image == "" {
		return fmt.Errorf("image: empty reference")
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return fmt.Errorf("image %q: %w", image, err)
	}
	return nil
}

// Swarm's syntax for placement constraints (swarmkit's manager/constraint):
// KEY==VALUE or KEY!=VALUE, the key a dotted name, the value free of the
// characters reserved for future operators.
var (
	constraintKey   = regexp.MustCompile(`^(?i)[a-z_][a-z0-9\-_.]+$`)
	constraintValue = regexp.MustCompile(`^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$`)
)

// constraintKeys are the keys Swarm matches nodes on; a constraint on any
// other key matches no node, and the service's tasks stay pending for ever.
var constraintKeys = []string{"node.id", "node.hostname", "node.ip", "node.role", "node.platform.os", "node.platform.arch"}

// ValidateConstraint checks one placement constraint's syntax and key.
func ValidateConstraint(c string) error {
	op := ""
	for _, o := range []string{"==", "!="} {
		if strings.Contains(c, o) {
			op = o
			break
		}
	}
	if op == "" {
		return fmt.Errorf("placement constraint %q: expected KEY==VALUE or KEY!=VALUE", c)
	}
	key, value, _ := strings.Cut(c, op)
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !constraintKey.MatchString(key) {
		return fmt.Errorf("placement constraint %q: invalid key %q", c, key)
	}
	if !constraintValue.MatchString(value) {
		return fmt.Errorf("placement constraint %q: invalid value %q", c, value)
	}
	lk := strings.ToLower(key)
	for _, k := range constraintKeys {
		if lk == k {
			return nil
		}
	}
	for _, prefix := range []string{"node.labels.", "engine.labels."} {
		if len(lk) > len(prefix) && strings.HasPrefix(lk, prefix) {
			return nil
		}
	}
	return fmt.Errorf("placement constraint %q: unknown key %q (one of %s, node.labels.NAME, engine.labels.NAME)", c, key, strings.Join(constraintKeys, ", "))
}
