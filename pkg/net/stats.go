package net

import "sync/atomic"

// LoopStats are one loop's counters since the engine started. They are
// what the regression tests assert on and what microctl serve reports.
type LoopStats struct {
	Loop            int    `json:"loop"`
	Iterations      uint64 `json:"iterations"`       // returns from the poller (epoll_wait)
	Wakeups         uint64 `json:"wakeups"`          // wake-ups received (eventfd drains)
	WakeWrites      uint64 `json:"wake_writes"`      // wake-ups sent (eventfd writes)
	Triggers        uint64 `json:"triggers"`         // Trigger calls; WakeWrites <= Triggers is the coalescing
	ListenerWakeups uint64 `json:"listener_wakeups"` // readiness events on a listening socket
	Accepted        uint64 `json:"accepted"`         // connections accepted
	AcceptEmpty     uint64 `json:"accept_empty"`     // listener wake-ups that found nothing to accept
	Dialed          uint64 `json:"dialed"`           // outgoing connections established
	Conns           int64  `json:"conns"`            // connections open now
	BytesRead       uint64 `json:"bytes_read"`
	BytesWritten    uint64 `json:"bytes_written"`
}

// loopCounters are the live, atomically updated LoopStats. The loop is
// the only writer of most of them; readers are other goroutines.
type loopCounters struct {
	iterations, wakeups, wakeWrites, triggers atomic.Uint64
	listenerWakeups, accepted, acceptEmpty    atomic.Uint64
	dialed, bytesRead, bytesWritten           atomic.Uint64
	conns                                     atomic.Int64
}

func (c *loopCounters) snapshot(idx int) LoopStats {
	return LoopStats{
		Loop:            idx,
		Iterations:      c.iterations.Load(),
		Wakeups:         c.wakeups.Load(),
		WakeWrites:      c.wakeWrites.Load(),
		Triggers:        c.triggers.Load(),
		ListenerWakeups: c.listenerWakeups.Load(),
		Accepted:        c.accepted.Load(),
		AcceptEmpty:     c.acceptEmpty.Load(),
		Dialed:          c.dialed.Load(),
		Conns:           c.conns.Load(),
		BytesRead:       c.bytesRead.Load(),
		BytesWritten:    c.bytesWritten.Load(),
	}
}
