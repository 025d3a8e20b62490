//go:build linux

package net

// Regression tests for the three defects of evio that pkg/net avoids.
// Each check runs twice: against pkg/net as it is, where it must find
// nothing, and against the same engine with evio's defect switched back on
// (Options.evio), where it must find the problem. The second run proves
// that the test would fail on evio's behaviour.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func epollLoops(t *testing.T, e *Engine) []*epollLoop {
	t.Helper()
	ee, ok := e.impl.(*epollEngine)
	if !ok {
		t.Fatalf("engine is %s, not epoll", e.Name())
	}
	return ee.loops
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}

// ---- (1) wake-ups -------------------------------------------------------

// wakeups is how many triggers the test sends: the million. Under
// the race detector that takes about 1.5 s on 2 cores, so it stays; if it
// ever has to shrink, any number still fails on evio's behaviour, since one
// undrained wake-up is enough to make the loop spin.
func wakeups() int { return 1_000_000 }

// idleProblems triggers n wake-ups from several goroutines, waits until
// every triggered function ran, then says what is wrong with the idle loop.
func idleProblems(t *testing.T, n int, opts ...Option) []string {
	e := startEngine(t, nopHandler{}, append(opts, WithLoops(1))...)
	l := epollLoops(t, e)[0]

	var ran atomic.Int64
	const producers = 4
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/producers; i++ {
				if i%2 == 0 {
					l.Trigger(func() { ran.Add(1) })
				} else {
					l.Trigger(nil) // a bare wake-up, as evio's Wake
					ran.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	total := int64(n / producers * producers)
	if !waitFor(30*time.Second, func() bool { return ran.Load() == total }) {
		t.Fatalf("only %d of %d triggered functions ran", ran.Load(), total)
	}
	// Let the last wake-up be consumed, then watch the idle loop.
	time.Sleep(50 * time.Millisecond)
	before := l.stats.snapshot(0)
	time.Sleep(200 * time.Millisecond)
	after := l.stats.snapshot(0)

	var problems []string
	fds := []unix.PollFd{{Fd: int32(l.p.efd), Events: unix.POLLIN}}
	if k, err := unix.Poll(fds, 0); err != nil {
		t.Fatal(err)
	} else if k > 0 && fds[0].Revents&unix.POLLIN != 0 {
		problems = append(problems, "the eventfd is still readable after the loop went idle")
	}
	if d := after.Iterations - before.Iterations; d > 2 {
		problems = append(problems, fmt.Sprintf("busy loop: %d epoll_wait returns in 200ms of idleness", d))
	}
	if after.WakeWrites >= after.Triggers {
		problems = append(problems, fmt.Sprintf("no coalescing: %d eventfd writes for %d triggers", after.WakeWrites, after.Triggers))
	}
	if after.Wakeups != after.WakeWrites {
		problems = append(problems, fmt.Sprintf("%d wake-ups received for %d sent", after.Wakeups, after.WakeWrites))
	}
	t.Logf("%d triggers: %d eventfd writes, %d wake-ups, %d loop iterations in all",
		after.Triggers, after.WakeWrites, after.Wakeups, after.Iterations)
	return problems
}

func TestWakeupsLeaveLoopIdle(t *testing.T) {
	if p := idleProblems(t, wakeups()); len(p) > 0 {
		t.Fatalf("after %d wake-ups: %v", wakeups(), p)
	}
}

func TestWakeupCheckCatchesEvioUndrainedEventfd(t *testing.T) {
	// evio wrote the eventfd on every trigger and never read it.
	p := idleProblems(t, 10_000, func(o *Options) { o.evio.noDrain = true })
	if len(p) == 0 {
		t.Fatal("the idle checks did not notice an eventfd that is never drained")
	}
	t.Logf("evio's behaviour detected: %v", p)
}

// ---- (2) one wake-up per connection -------------------------------------

// threadWakeups returns how many times each loop's OS thread went to
// sleep and was woken (voluntary context switches, from /proc): the
// kernel's own count of wake-ups, including those where epoll_wait found
// the event already gone and slept again without returning.
func threadWakeups(t *testing.T, ls []*epollLoop) []int {
	t.Helper()
	var n []int
	for _, l := range ls {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", l.tid.Load()))
		if err != nil {
			t.Fatal(err)
		}
		k := -1
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if k < 0 {
			t.Fatal("no voluntary_ctxt_switches in /proc")
		}
		n = append(n, k)
	}
	return n
}

// herdProblems opens conns connections one after another to an engine of
// loops loops, and says what is wrong with the wake-ups they caused.
// slack is how many extra listener wake-ups are tolerated: none for
// SO_REUSEPORT, where the kernel hands each connection to one socket; a
// few for EPOLLEXCLUSIVE, which the kernel documents as waking "one or
// more" of the epoll instances.
func herdProblems(t *testing.T, loops, conns, slack int, opts ...Option) ([]string, []LoopStats) {
	e := startEngine(t, nopHandler{}, append(opts, WithLoops(loops))...)
	addr, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := epollLoops(t, e)
	if !waitFor(10*time.Second, func() bool {
		for _, l := range ls {
			if l.tid.Load() == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("loops did not start")
	}
	time.Sleep(20 * time.Millisecond) // let the loops settle in epoll_wait
	woken := threadWakeups(t, ls)
	accepted := func() (n uint64) {
		for _, s := range e.Stats() {
			n += s.Accepted
		}
		return n
	}
	var clients []stdnet.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := stdnet.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		// One at a time: each connection is its own wake-up.
		if !waitFor(10*time.Second, func() bool { return accepted() == uint64(i+1) }) {
			t.Fatalf("connection %d was not accepted", i+1)
		}
	}
	time.Sleep(50 * time.Millisecond) // late wake-ups of other loops would show now
	st := e.Stats()
	after := threadWakeups(t, ls)
	threads := 0
	for i := range after {
		threads += after[i] - woken[i]
	}
	var wakes, empty uint64
	for _, s := range st {
		wakes += s.ListenerWakeups
		empty += s.AcceptEmpty
	}
	var problems []string
	if wakes < uint64(conns) || wakes > uint64(conns+slack) {
		problems = append(problems, fmt.Sprintf("%d listener wake-ups for %d connections", wakes, conns))
	}
	if empty > uint64(slack) {
		problems = append(problems, fmt.Sprintf("%d wake-ups found nothing to accept (thundering herd)", empty))
	}
	// One wake-up per connection, plus slack for the Go runtime's own
	// (a thread that lost its P on the way out of epoll_wait sleeps once
	// more). A herd wakes every loop: loops times as many.
	if threads > conns*3/2+slack {
		problems = append(problems, fmt.Sprintf("the loops' threads were woken %d times for %d connections (thundering herd)", threads, conns))
	}
	t.Logf("%d connections: %d listener events, %d empty accepts, %d thread wake-ups over %d loops", conns, wakes, empty, threads, loops)
	return problems, st
}

func TestEachConnectionWakesOneLoop(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reusePort bool
		slack     int
	}{
		{"SO_REUSEPORT", true, 0},
		{"EPOLLEXCLUSIVE", false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const loops, conns = 4, 64
			problems, st := herdProblems(t, loops, conns, tc.slack, WithReusePort(tc.reusePort))
			for _, s := range st {
				t.Logf("loop %d: %d listener wake-ups, %d accepted, %d empty", s.Loop, s.ListenerWakeups, s.Accepted, s.AcceptEmpty)
			}
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			if tc.reusePort {
				// The kernel spreads connections over the sockets by a
				// hash of the 4-tuple; 64 connections missing one of 4
				// loops entirely has a probability of about 4e-8.
				for _, s := range st {
					if s.Accepted == 0 {
						t.Errorf("loop %d accepted nothing: the listeners are not spread over the loops", s.Loop)
					}
				}
			}
		})
	}
}

func TestHerdCheckCatchesEvioSharedListener(t *testing.T) {
	problems, _ := herdProblems(t, 4, 64, 0, func(o *Options) { o.evio.sharedListener = true })
	if len(problems) == 0 {
		t.Fatal("the wake-up checks did not notice a listener registered in every loop")
	}
	t.Logf("evio's behaviour detected: %v", problems)
}

// ---- (3) a large response to a slow reader -------------------------------

const (
	bigResponse = 64 << 20
	bigPiece    = 1 << 20
)

// bigData is the big response: consecutive big-endian uint64 offsets, so
// a lost, repeated or reordered piece shows up at the first wrong byte.
var bigData = sync.OnceValue(func() []byte {
	b := make([]byte, bigResponse)
	for o := 0; o < bigResponse; o += 8 {
		binary.BigEndian.PutUint64(b[o:], uint64(o))
	}
	return b
})

// bigWriter sends the big response: the first pieces from OnOpen, the rest
// from functions triggered by another goroutine while earlier output is
// still pending, with bare wake-ups in between; then it closes.
type bigWriter struct{ nopHandler }

func (bigWriter) OnOpen(c Conn) {
	data := bigData()
	const direct = 8
	for k := 0; k < direct; k++ {
		c.Write(data[k*bigPiece : (k+1)*bigPiece])
	}
	l := c.Loop()
	go func() {
		for k := direct; k < bigResponse/bigPiece; k++ {
			p := data[k*bigPiece : (k+1)*bigPiece]
			l.Trigger(func() { c.Write(p) })
			l.Trigger(nil)
			if k%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		l.Trigger(c.Close)
	}()
}

// slowRead reads the whole response, slowly for its first 4 MiB, and
// returns the offset of the first wrong byte, or an error.
func slowRead(c stdnet.Conn) (int, error) {
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, data := make([]byte, 256<<10), bigData()
	off := 0
	for {
		buf := got
		if off < 4<<20 {
			buf = got[:16<<10]
			time.Sleep(time.Millisecond)
		}
		n, err := c.Read(buf)
		if n > 0 {
			if off+n > len(data) {
				return off, fmt.Errorf("more than the %d bytes sent", len(data))
			}
			if want := data[off : off+n]; !bytes.Equal(buf[:n], want) {
				for i := range n {
					if buf[i] != want[i] {
						return off + i, fmt.Errorf("wrong byte at offset %d", off+i)
					}
				}
			}
			off += n
		}
		if errors.Is(err, io.EOF) {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

func bigResponseProblem(t *testing.T, opts ...Option) error {
	e := startEngine(t, bigWriter{}, append(opts, WithLoops(2))...)
	addr, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := stdnet.Dialer{}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A small receive buffer keeps the server's output pending longer.
	c.(*stdnet.TCPConn).SetReadBuffer(64 << 10)
	n, err := slowRead(c)
	if err != nil {
		return err
	}
	if n != bigResponse {
		return fmt.Errorf("received %d bytes, want %d", n, bigResponse)
	}
	return nil
}

func TestSlowReaderGetsEveryByte(t *testing.T) {
	if err := bigResponseProblem(t); err != nil {
		t.Fatalf("64 MiB response: %v", err)
	}
}

func TestSlowReaderCheckCatchesEvioReplacedOutput(t *testing.T) {
	err := bigResponseProblem(t, func(o *Options) { o.evio.replaceOutput = true })
	if err == nil {
		t.Fatal("the byte-exact check did not notice output replaced while pending")
	}
	t.Logf("evio's behaviour detected: %v", err)
}

func TestSlowReaderGoEngine(t *testing.T) {
	// The portable engine keeps the same promise.
	if err := bigResponseProblem(t, WithEngine(EngineGo)); err != nil {
		t.Fatalf("64 MiB response on the go engine: %v", err)
	}
}
