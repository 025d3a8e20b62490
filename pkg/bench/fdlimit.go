package bench

import (
	"fmt"
	"runtime"
)

// fdSpare covers what a run needs besides its connections: stdio, the
// epoll and eventfd descriptors of each loop, the runtime's own, a
// resolver, the files --hdr and --report write.
const fdSpare = 64

// DescriptorsNeeded is how many file descriptors a run with conns
// connections needs; builtin adds the server side of the built-in target
// running in the same process.
func DescriptorsNeeded(conns, loops int, builtin bool) uint64 {
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	n := uint64(conns) + uint64(4*loops) + fdSpare
	if builtin {
		n += uint64(conns) + uint64(loops)
	}
	return n
}

// FDLimitError means the process may not open as many descriptors as the
// run needs, and the hard limit forbids raising it.
type FDLimitError struct {
	Need, Have uint64
}

func (e *FDLimitError) Error() string {
	return fmt.Sprintf("this run needs about %d file descriptors and may open only %d (ulimit -n)", e.Need, e.Have)
}

// Hint says what to do about it.
func (e *FDLimitError) Hint() string {
	return "use fewer connections (-c), or raise the limit: ulimit -n " + fmt.Sprint(e.Need)
}
