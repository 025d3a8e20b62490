package hint

import (
	"errors"
	"fmt"
	"testing"
)

type hinted struct{}

func (hinted) Error() string { return "no swarm" }
func (hinted) Hint() string  { return "run: microctl swarm init" }

func TestOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), ""},
		{hinted{}, "run: microctl swarm init"},
		{fmt.Errorf("deploy: %w", hinted{}), "run: microctl swarm init"},
		{errors.Join(errors.New("first"), hinted{}), "run: microctl swarm init"},
	}
	for _, tt := range tests {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("Of(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
