package health

import (
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// DurationValue is a command-line value taking whole seconds ("15", as
// go-micro's --register_ttl does) or a Go duration ("15s"). It implements
// pflag.Value.
type DurationValue struct{ D *time.Duration }

// String implements pflag.Value.
func (v DurationValue) String() string {
	if v.D == nil || *v.D == 0 {
		return ""
	}
	return v.D.String()
}

// Set implements pflag.Value.
func (v DurationValue) Set(s string) error {
	d, err := registry.ParseSeconds(s)
	if err != nil {
		return err
	}
	*v.D = d
	return nil
}

// Type implements pflag.Value.
func (v DurationValue) Type() string { return "duration" }
