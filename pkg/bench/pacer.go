package bench

import (
	"math"
	"time"

	mnet "github.com/microctl/microctl/pkg/net"
)

// Rate mode (-R). Each loop has one schedule for its share of the rate:
// the k-th request of the loop is due at a fixed time, whatever happened
// before. A due request goes out on any of the loop's connections that
// has room; if none has, it waits, and its latency still counts from when
// it was due (coordinated omission corrected, as wrk2 does).
//
// wrk2 gives each connection its own schedule. With one request in flight
// per connection, a connection that falls behind then catches up only as
// fast as its round trips allow, while its neighbours idle; near the
// server's capacity the achieved rate drifts below the target. Sharing the
// schedule among the loop's connections behaves like a client with a
// connection pool: the target rate is reached whenever the server can
// serve it, and a slow server is still charged for every request it held up.

// pacer is a loop's schedule.
type pacer struct {
	timer    *mnet.Timer
	next     int64   // when the next request is due, on the loop clock
	interval int64   // nanoseconds between the loop's requests
	quota    int64   // requests left to schedule; -1: no limit
	owed     []int64 // due times not yet sent, oldest first, from head
	head     int
	idle     []*connState // open connections that had room when nothing was due

	// With a schedule (a ramp, stages) the due times follow its integral
	// instead of a fixed interval: the loop's k-th request is due when
	// share*N(t) = k + phase, N being the schedule's requests due by t.
	sched     *schedule
	share     float64 // the loop's part of the rate (its connections' share)
	phase     float64 // offset so that the loops' requests interleave
	k         float64 // the loop's requests scheduled so far
	stage     int     // current stage, for schedule.timeOf
	exhausted bool    // the schedule has ended: nothing more is due
}

// paceSlack is how early the pacing timer may run so that one wake-up of
// the loop sends several requests (see net.WithTimerSlack).
const paceSlack = 50 * time.Microsecond

func (p *pacer) owedLen() int { return len(p.owed) - p.head }

func (p *pacer) pop() int64 {
	d := p.owed[p.head]
	p.head++
	if p.head == len(p.owed) {
		p.owed, p.head = p.owed[:0], 0
	} else if p.head > 1024 && p.head > len(p.owed)/2 {
		n := copy(p.owed, p.owed[p.head:])
		p.owed, p.head = p.owed[:n], 0
	}
	return d
}

// consume drops one request from the schedule: a failed connect uses it up.
func (p *pacer) consume() {
	switch {
	case p.owedLen() > 0:
		p.pop()
	case p.quota > 0:
		p.quota--
	}
}

// giveBack puts the due times of requests that were never answered (the
// server closed after an earlier response) back at the front.
func (p *pacer) giveBack(fs []flight) {
	due := make([]int64, 0, len(fs)+p.owedLen())
	for _, f := range fs {
		due = append(due, f.due)
	}
	p.owed, p.head = append(due, p.owed[p.head:]...), 0
}

// done: with -n, everything scheduled has been sent and answered.
func (p *pacer) done(lr *loopRun) bool {
	return p.quota == 0 && p.owedLen() == 0 && lr.inflight == 0
}

// start sets the loop's schedule: its share of the rate, in proportion to
// its connections, offset so that the loops' requests interleave.
func (lr *loopRun) startPacer() {
	o := &lr.r.o
	share := o.Rate * float64(len(lr.conns)) / float64(o.Connections)
	p := &lr.pace
	if o.Stages != nil {
		p.sched = newSchedule(o.Stages)
		p.share = float64(len(lr.conns)) / float64(o.Connections)
		p.phase = math.Mod(float64(lr.idx)*p.share, 1)
		p.advance(lr.r.start)
		if p.exhausted {
			return
		}
	} else {
		p.interval = max(int64(1e9/share), 1)
		p.next = lr.r.start + int64(float64(lr.idx)*1e9/o.Rate)
	}
	p.timer = lr.l.AfterFunc(0, lr.tick)
	p.timer.ResetAt(time.Duration(p.next))
}

// advance sets next to the due time of the loop's request number k on the
// schedule, or marks the schedule exhausted.
func (p *pacer) advance(start int64) {
	t, ok := p.sched.timeOf((p.k+p.phase)/p.share, &p.stage)
	if !ok {
		p.exhausted = true
		return
	}
	p.next = start + int64(t*1e9)
}

// tick queues every request due by now (and up to paceSlack ahead: the
// timer may run that early) and sends what the connections have room for.
func (lr *loopRun) tick() {
	if lr.stopping {
		return
	}
	p := &lr.pace
	now := int64(lr.l.Now())
	for horizon := now + int64(paceSlack); !p.exhausted && p.next <= horizon && p.quota != 0; {
		p.owed = append(p.owed, p.next)
		if p.quota > 0 {
			p.quota--
		}
		if p.sched == nil {
			p.next += p.interval
		} else {
			p.k++
			p.advance(lr.r.start)
		}
	}
	if p.quota != 0 && !p.exhausted {
		p.timer.ResetAt(time.Duration(p.next))
	}
	for p.owedLen() > 0 && len(p.idle) > 0 {
		cs := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		cs.idle = false
		if cs.state == csOpen {
			lr.fillPaced(cs, now)
		}
	}
	if p.done(lr) {
		lr.stop()
	}
}

// fillPaced sends due requests on cs, as many as it has room for, and
// lists it as idle if it still has room.
func (lr *loopRun) fillPaced(cs *connState, now int64) {
	o := &lr.r.o
	p := &lr.pace
	room := o.Pipeline - cs.inflight()
	if cs.h2 != nil {
		room = cs.h2.room(o.Streams)
	}
	n := min(room, p.owedLen())
	if n > 0 && cs.h2 != nil {
		for i := 0; i < n; i++ {
			lr.sendH2(cs, p.pop(), now)
		}
		lr.st.bytesWritten += uint64(cs.h2.send(cs.c))
		if lr.st.tl != nil {
			lr.st.tl.onSent(now, n)
		}
	} else if n > 0 && cs.ep.treqs != nil {
		for i := 0; i < n; i++ {
			lr.sendTarget(cs, p.pop(), now)
		}
		if lr.st.tl != nil {
			lr.st.tl.onSent(now, n)
		}
	} else if n > 0 {
		if n == o.Pipeline && o.Pipeline > 1 {
			cs.c.Write(cs.ep.batch)
		} else {
			for i := 0; i < n; i++ {
				cs.c.Write(cs.ep.req)
			}
		}
		for i := 0; i < n; i++ {
			cs.flights = append(cs.flights, flight{due: p.pop(), sent: now})
		}
		lr.inflight += n
		lr.st.sent += uint64(n)
		if lr.st.tl != nil {
			lr.st.tl.onSent(now, n)
		}
		lr.st.bytesWritten += uint64(n * len(cs.ep.req))
	}
	if room > n && !cs.idle {
		cs.idle = true
		p.idle = append(p.idle, cs)
	}
	if p.done(lr) {
		lr.stop()
	}
}
