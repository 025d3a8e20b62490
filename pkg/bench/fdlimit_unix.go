//go:build unix

package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// EnsureDescriptors raises the soft limit on open files to need (never
// above the hard limit) and returns the limit in effect; a *FDLimitError
// when the hard limit is below need. Running out of descriptors in the
// middle of a run fails connects at best, and can make the Go runtime
// itself abort (it cannot create a thread's eventfd or a pipe), so the
// run is refused before it starts.
func EnsureDescriptors(need uint64) (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if rl.Cur >= need {
		return rl.Cur, nil
	}
	if rl.Max < need {
		if rl.Cur < rl.Max {
			// Take what there is, for the error message to be true.
			rl.Cur = rl.Max
			_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		}
		return rl.Cur, &FDLimitError{Need: need, Have: rl.Max}
	}
	rl.Cur = need
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return rl.Cur, &FDLimitError{Need: need, Have: rl.Cur}
	}
	return need, nil
}
