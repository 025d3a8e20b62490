package net

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestTimerHeapOrder(t *testing.T) {
	var now int64
	h := &timerHeap{now: func() int64 { return now }}
	var fired []int
	var timers []*Timer
	for i := 0; i < 200; i++ {
		d := time.Duration(rand.IntN(1000))
		timers = append(timers, h.newTimer(d, func() { fired = append(fired, int(timers[i].when)) }))
	}
	// Stop a third, reset a third.
	for i, tm := range timers {
		switch i % 3 {
		case 0:
			tm.Stop()
		case 1:
			tm.Reset(time.Duration(rand.IntN(1000)))
		}
	}
	now = 2000
	h.run(now)
	if len(fired) != 200-67 {
		t.Fatalf("%d timers fired, want %d", len(fired), 200-67)
	}
	if len(h.ts) != 0 {
		t.Fatalf("%d timers left", len(h.ts))
	}
	for _, tm := range timers {
		if tm.Stop() {
			t.Fatal("Stop of a fired timer returned true")
		}
	}
	if !slices.IsSorted(fired) {
		t.Fatalf("timers fired out of order: %v", fired)
	}
}

func TestTimerHeapNext(t *testing.T) {
	var now int64 = 100
	h := &timerHeap{now: func() int64 { return now }}
	if _, ok := h.next(now); ok {
		t.Fatal("next on an empty heap")
	}
	h.newTimer(50, func() {})
	if d, ok := h.next(now); !ok || d != 50 {
		t.Fatalf("next = %v, %v", d, ok)
	}
	if d, _ := h.next(now + 80); d != 0 {
		t.Fatalf("overdue timer: next = %v, want 0", d)
	}
}

func TestTimerRescheduledIntoThePastWaits(t *testing.T) {
	var now int64 = 10
	h := &timerHeap{now: func() int64 { return now }}
	runs := 0
	var tm *Timer
	tm = h.newTimer(0, func() { runs++; tm.ResetAt(0) })
	h.run(now)
	if runs != 1 {
		t.Fatalf("a self-rescheduling timer ran %d times in one pass", runs)
	}
}
