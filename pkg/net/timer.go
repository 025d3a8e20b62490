package net

import "time"

// Timer is a function scheduled on a loop: a timeout or a pacing tick
// without a goroutine or a runtime timer per connection. It runs when due,
// or up to Options.TimerSlack before, with an earlier timer. Its methods
// must be called on the loop that made it.
type Timer struct {
	when int64 // on the loop clock, in nanoseconds
	fn   func()
	idx  int // position in the heap, -1 when not scheduled
	h    *timerHeap
}

// Stop unschedules t and reports whether it was scheduled.
func (t *Timer) Stop() bool {
	if t.idx < 0 {
		return false
	}
	t.h.remove(t.idx)
	return true
}

// Reset schedules t to run d from the loop's current time, whether or not
// it already ran or was stopped. Reusing one Timer per connection keeps
// pacing free of allocations.
func (t *Timer) Reset(d time.Duration) {
	t.ResetAt(time.Duration(t.h.now()) + d)
}

// ResetAt schedules t at an absolute time on the loop clock (Loop.Now), so
// a pacer can keep a fixed schedule however late the previous tick ran.
func (t *Timer) ResetAt(at time.Duration) {
	t.Stop()
	t.when = int64(at)
	t.h.push(t)
}

// timerHeap is a binary min-heap of timers ordered by when. One per loop;
// only that loop touches it.
type timerHeap struct {
	ts  []*Timer
	now func() int64
}

func (h *timerHeap) newTimer(d time.Duration, fn func()) *Timer {
	t := &Timer{fn: fn, idx: -1, h: h}
	t.when = h.now() + int64(d)
	h.push(t)
	return t
}

func (h *timerHeap) push(t *Timer) {
	t.idx = len(h.ts)
	h.ts = append(h.ts, t)
	h.up(t.idx)
}

func (h *timerHeap) remove(i int) {
	last := len(h.ts) - 1
	t := h.ts[i]
	if i != last {
		h.ts[i] = h.ts[last]
		h.ts[i].idx = i
	}
	h.ts[last] = nil
	h.ts = h.ts[:last]
	if i != last {
		if !h.up(i) {
			h.down(i)
		}
	}
	t.idx = -1
}

// next returns how long until the earliest timer is due (0 if one is due
// now) and whether there is any timer at all.
func (h *timerHeap) next(now int64) (time.Duration, bool) {
	if len(h.ts) == 0 {
		return 0, false
	}
	d := h.ts[0].when - now
	if d < 0 {
		d = 0
	}
	return time.Duration(d), true
}

// run fires every timer due at now, earliest first, and returns how many.
// A timer that reschedules itself for a time already past runs again in
// the next iteration, not in this call, so a late pacer cannot starve I/O.
func (h *timerHeap) run(now int64) int {
	n := 0
	limit := len(h.ts)
	for len(h.ts) > 0 && h.ts[0].when <= now && n < limit {
		t := h.ts[0]
		h.remove(0)
		n++
		t.fn()
	}
	return n
}

func (h *timerHeap) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if h.ts[p].when <= h.ts[i].when {
			break
		}
		h.swap(i, p)
		i = p
		moved = true
	}
	return moved
}

func (h *timerHeap) down(i int) {
	n := len(h.ts)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.ts[r].when < h.ts[l].when {
			m = r
		}
		if h.ts[i].when <= h.ts[m].when {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *timerHeap) swap(i, j int) {
	h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
	h.ts[i].idx = i
	h.ts[j].idx = j
}
