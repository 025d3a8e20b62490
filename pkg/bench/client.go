package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	mnet "github.com/microctl/microctl/pkg/net"
)

// The load generator is a pkg/net Handler. Each connection belongs to one
// loop for its whole life (reconnects included), so its state, its
// pacing timer and its loop's statistics are touched by that loop only.

// endpoint is one address the connections are spread over.
type endpoint struct {
	name  string      // host:port
	req   []byte      // one request (or the raw TCP payload)
	batch []byte      // Pipeline requests back to back, sent in one write
	head  bool        // HEAD requests: responses have no body
	tls   *tls.Config // https: the client configuration (its ServerName set)
	h2    *h2req      // --http2: the request as header fields

	// With --targets, the requests sent to this address, taken in turn
	// (or at random) instead of req.
	treqs []treq
}

// treq is one target's request, as sent to one address.
type treq struct {
	idx  int32 // index in the run's target list (Options.TargetRequests)
	req  []byte
	head bool
}

// flight is a request on the wire.
type flight struct {
	due  int64 // when it was due (rate mode) or sent; latency is measured from here
	sent int64 // when it was written
	tgt  int32 // with --targets: the target's index
}

const (
	csIdle = iota
	csConnecting
	csOpen
	csFinished
	csHandshake // https: connected, TLS handshake running
)

// closeReason says why the client itself closed a connection, so that
// OnClose does not count it a second time.
const (
	reasonNone = iota
	reasonReconnect
	reasonFailed
	reasonHandshake // the TLS handshake failed: retry after a backoff
)

// connState is one of the -c connections, across reconnects.
type connState struct {
	lr    *loopRun
	ep    *endpoint
	state int
	c     mnet.Conn // what requests are written to: raw, or a *tlsConn
	raw   mnet.Conn // the pkg/net connection c writes to, for telling events apart
	hs    *tlsAdapter
	tc    *tlsConn
	h2    *h2conn // --http2
	p     responseParser
	got   int // TCP mode: bytes of the current reply received

	flights []flight // in flight, oldest first, from fhead
	fhead   int
	quota   int64 // requests left to send; -1: no limit (always, in rate mode)
	idle    bool  // rate mode: queued in loopRun.idle

	reason       int
	connectFails int
	everOpen     bool
	retry        *mnet.Timer // reconnect after a failed connect
	next         int         // --targets, round-robin: the next of ep.treqs
	dialAt       int64       // https: when the connect started (the handshake counts from there)
}

// resetParser readies the parser for the next response: a HEAD request's
// has no body.
func (cs *connState) resetParser() {
	if cs.ep.treqs == nil {
		cs.p.reset(cs.ep.head)
		return
	}
	head := false
	if cs.inflight() > 0 {
		head = cs.lr.r.o.TargetRequests[cs.flights[cs.fhead].tgt].Method == "HEAD"
	}
	cs.p.reset(head)
}

func (cs *connState) inflight() int { return len(cs.flights) - cs.fhead }

func (cs *connState) popFlight() flight {
	f := cs.flights[cs.fhead]
	cs.fhead++
	if cs.fhead == len(cs.flights) {
		cs.flights, cs.fhead = cs.flights[:0], 0
	}
	cs.lr.inflight--
	return f
}

// loopRun is one loop's share of the run.
type loopRun struct {
	r        *runner
	idx      int
	l        mnet.Loop
	st       *loopStats
	conns    []*connState
	active   int // connections not finished
	stopping bool
	end      int64
	timers   []*mnet.Timer
	inflight int // requests in flight on all the loop's connections

	pace pacer      // rate mode: the loop's schedule
	rng  *rand.Rand // --targets --random

	plain []byte // https: decrypted bytes
}

// OnOpen starts sending on a new connection.
func (r *runner) OnOpen(c mnet.Conn) {
	cs := c.Context().(*connState)
	if cs.lr.stopping || cs.state == csFinished {
		c.Close()
		return
	}
	cs.c, cs.raw = c, c
	if cs.ep.tls != nil {
		cs.state = csHandshake
		cs.hs = startHandshake(c, cs.ep.tls, r.o.Timeout, true, func(tc *tlsConn, err error) { r.handshakeDone(cs, c, tc, err) })
		return
	}
	r.opened(cs)
}

// opened starts sending on a connection ready for requests.
func (r *runner) opened(cs *connState) {
	if r.o.HTTP2 {
		cs.h2 = newH2Conn()
		cs.h2.start()
		cs.lr.st.bytesWritten += uint64(cs.h2.send(cs.c))
	}
	cs.state = csOpen
	cs.connectFails = 0
	if !cs.everOpen {
		cs.everOpen = true
		r.everConnected.Store(true)
	}
	cs.resetParser()
	cs.got = 0
	cs.lr.fill(cs, int64(cs.lr.l.Now()))
}

// OnData parses responses, records them, and sends the next requests.
func (r *runner) OnData(c mnet.Conn, in []byte) {
	cs := c.Context().(*connState)
	lr := cs.lr
	if lr.stopping || cs.raw != c {
		return
	}
	if cs.state != csOpen {
		if cs.state == csHandshake {
			lr.st.bytesRead.Add(uint64(len(in)))
			cs.hs.feed(in)
		}
		return
	}
	if cs.tc != nil {
		lr.st.bytesRead.Add(uint64(len(in)))
		cs.tc.a.feed(in)
		r.readTLS(cs, c)
		return
	}
	lr.st.bytesRead.Add(uint64(len(in)))
	r.onPlain(cs, in)
}

// onPlain handles response bytes (decrypted, with TLS).
func (r *runner) onPlain(cs *connState, in []byte) {
	lr := cs.lr
	now := int64(lr.l.Now())
	if cs.h2 != nil {
		r.onH2(cs, in, now)
		return
	}
	if r.o.TCP {
		cs.got += len(in)
		for cs.got >= r.o.Expect && cs.inflight() > 0 {
			cs.got -= r.o.Expect
			f := cs.popFlight()
			lr.st.response(0, f.since(now), (now-f.sent)/1e3, now)
		}
		if cs.inflight() == 0 {
			cs.got = 0 // bytes nobody asked for are counted, not owed to the next request
		}
		lr.fill(cs, now)
		return
	}
	for len(in) > 0 {
		if cs.inflight() == 0 {
			lr.fail(cs, ErrParse, parseErr("%d bytes received with no request outstanding", len(in)))
			return
		}
		n, done, err := cs.p.feed(in)
		if err != nil {
			lr.fail(cs, ErrParse, err)
			return
		}
		in = in[n:]
		if !done {
			break
		}
		f := cs.popFlight()
		lr.st.response(cs.p.Status, f.since(now), (now-f.sent)/1e3, now)
		if lr.st.byTarget != nil {
			lr.st.byTarget[f.tgt].response(cs.p.Status, f.since(now))
		}
		if cs.p.Close() {
			lr.reconnect(cs)
			return
		}
		cs.resetParser()
	}
	lr.fill(cs, now)
}

// OnClose accounts for a connection that ended, and replaces it.
func (r *runner) OnClose(c mnet.Conn, err error) {
	cs := c.Context().(*connState)
	lr := cs.lr
	h2NotReady := cs.raw == c && cs.h2 != nil && !cs.h2.ready
	if cs.raw == c {
		cs.c, cs.raw, cs.tc, cs.h2 = nil, nil, nil, nil
		if cs.hs != nil {
			// The handshake's goroutine reads what was received, then
			// sees the end; handshakeDone does the accounting.
			cs.hs.Close()
			if cs.state == csHandshake && !lr.stopping {
				return
			}
		}
	}
	if lr.stopping || cs.state == csFinished {
		return
	}
	reason := cs.reason
	cs.reason = reasonNone
	var de *mnet.DialError
	switch {
	case errors.As(err, &de):
		cs.state = csIdle
		lr.st.fail(ErrConnect, err)
		// With -n, a failed connect uses up a request, so that a run
		// against a target gone down still ends.
		if cs.quota > 0 {
			cs.quota--
		}
		if r.o.Rate > 0 {
			lr.pace.consume()
			if lr.pace.done(lr) {
				lr.stop()
				return
			}
		}
		cs.connectFails++
		if !cs.everOpen && cs.connectFails == 1 &&
			r.neverOpened.Add(1) == r.conns && !r.everConnected.Load() {
			// Every connection failed its first connect and none has ever
			// worked: the target is down; say so now rather than after
			// the whole duration.
			r.abort(&ConnectError{Addr: cs.ep.name, Err: de.Err})
			return
		}
		lr.redial(cs)
		return
	case reason == reasonHandshake:
		cs.state = csIdle
		lr.redial(cs)
		return
	case reason != reasonNone:
		// Closed by the client; already accounted for.
	case cs.state == csOpen && h2NotReady:
		// Closed before the server's HTTP/2 SETTINGS: no request went
		// out, so it uses one up, as a failed connect does, for -n to end.
		lr.st.fail(ErrClosed, errors.New("closed before the server's HTTP/2 SETTINGS"))
		if cs.quota > 0 {
			cs.quota--
		}
		if r.o.Rate > 0 {
			lr.pace.consume()
		}
	case cs.state == csOpen:
		lr.peerClosed(cs, err)
	}
	cs.state = csIdle
	if r.o.Rate > 0 && lr.pace.done(lr) {
		lr.stop()
		return
	}
	lr.afterClose(cs)
}

// peerClosed accounts for a connection the peer (or the kernel) ended.
func (lr *loopRun) peerClosed(cs *connState, err error) {
	if err == io.EOF && !lr.r.o.TCP {
		done, perr := cs.p.eof()
		if done {
			// The body ran to the end of the connection.
			f := cs.popFlight()
			now := int64(lr.l.Now())
			lr.st.response(cs.p.Status, f.since(now), (now-f.sent)/1e3, now)
			if lr.st.byTarget != nil {
				lr.st.byTarget[f.tgt].response(cs.p.Status, f.since(now))
			}
		} else if perr != nil && cs.inflight() > 0 {
			lr.st.fail(ErrClosed, perr)
			cs.dropFlights(lr, false)
			return
		}
	}
	if cs.inflight() == 0 {
		// An idle keep-alive connection closed by the server (its idle
		// timeout): not an error; the connection is replaced.
		return
	}
	lr.st.fail(classify(err), err)
	cs.dropFlights(lr, false)
}

// classify maps a socket error to an error kind.
func classify(err error) ErrorKind {
	switch {
	case err == io.EOF, errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ErrClosed
	}
	var se *os.SyscallError
	if errors.As(err, &se) && (se.Syscall == "write" || se.Syscall == "writev") {
		return ErrWrite
	}
	return ErrRead
}

// dropFlights forgets the requests in flight on a closed connection.
// giveBack returns them to the quota and the rate schedule: they were
// never answered because the server closed normally after an earlier
// response, not because anything failed.
func (cs *connState) dropFlights(lr *loopRun, giveBack bool) {
	n := cs.inflight()
	if !giveBack && n > 0 && lr.st.byTarget != nil {
		// A failure counts once, against the oldest request in flight.
		lr.st.byTarget[cs.flights[cs.fhead].tgt].errors++
	}
	if giveBack && n > 0 {
		if cs.quota >= 0 {
			cs.quota += int64(n)
		}
		if lr.r.o.Rate > 0 {
			lr.pace.giveBack(cs.flights[cs.fhead:])
		}
	}
	lr.inflight -= n
	cs.flights, cs.fhead = cs.flights[:0], 0
}

// fail counts a failure on cs and replaces the connection.
func (lr *loopRun) fail(cs *connState, kind ErrorKind, err error) {
	lr.st.fail(kind, err)
	cs.dropFlights(lr, false)
	cs.reason = reasonFailed
	cs.c.Close()
}

// reconnect closes cs after a response that ended the connection.
func (lr *loopRun) reconnect(cs *connState) {
	cs.dropFlights(lr, true)
	cs.reason = reasonReconnect
	cs.c.Close()
}

// afterClose dials again, unless the connection has nothing left to do.
func (lr *loopRun) afterClose(cs *connState) {
	cs.got = 0
	if cs.quota == 0 {
		lr.finish(cs)
		return
	}
	lr.dial(cs)
}

func (lr *loopRun) dial(cs *connState) {
	cs.state = csConnecting
	if cs.ep.tls != nil {
		cs.dialAt = int64(lr.l.Now())
	}
	lr.l.Dial(lr.r.addrs[cs.ep.name], cs)
}

// redial retries a failed connect after a short backoff (1 ms doubling to
// 100 ms), so an unreachable instance costs little.
func (lr *loopRun) redial(cs *connState) {
	if cs.quota == 0 {
		lr.finish(cs)
		return
	}
	backoff := time.Millisecond << min(cs.connectFails-1, 7)
	backoff = min(backoff, 100*time.Millisecond)
	if cs.retry == nil {
		cs.retry = lr.l.AfterFunc(backoff, func() {
			if !lr.stopping && cs.state == csIdle {
				lr.dial(cs)
			}
		})
		return
	}
	cs.retry.Reset(backoff)
}

// fill sends as many requests as the connection may have in flight: up
// to Pipeline, within the quota, and in rate mode only those already due.
func (lr *loopRun) fill(cs *connState, now int64) {
	o := &lr.r.o
	if o.Rate > 0 {
		lr.fillPaced(cs, now)
		return
	}
	if cs.h2 != nil {
		lr.fillH2(cs, now)
		return
	}
	room := o.Pipeline - cs.inflight()
	if cs.quota >= 0 && int64(room) > cs.quota {
		room = int(cs.quota)
	}
	if room > 0 && cs.ep.treqs != nil {
		for i := 0; i < room; i++ {
			lr.sendTarget(cs, now, now)
		}
		if cs.quota > 0 {
			cs.quota -= int64(room)
		}
	} else if room > 0 {
		if room == o.Pipeline && o.Pipeline > 1 {
			cs.c.Write(cs.ep.batch)
		} else {
			for i := 0; i < room; i++ {
				cs.c.Write(cs.ep.req)
			}
		}
		for i := 0; i < room; i++ {
			cs.flights = append(cs.flights, flight{due: now, sent: now})
		}
		if cs.quota > 0 {
			cs.quota -= int64(room)
		}
		lr.inflight += room
		lr.st.sent += uint64(room)
		lr.st.bytesWritten += uint64(room * len(cs.ep.req))
	}
	if cs.quota == 0 && cs.inflight() == 0 {
		lr.finish(cs)
	}
}

// since is the latency of flight f answered at now, measured from when it
// was due if it was sent late (the coordinated-omission correction: the
// wait for a free connection counts), from when it was sent if it went a
// little early (the batching above; measuring from the due time would
// understate it). It is never less than the uncorrected latency.
func (f flight) since(now int64) int64 {
	return (now - min(f.due, f.sent)) / 1e3
}

// finish retires a connection whose quota is spent.
func (lr *loopRun) finish(cs *connState) {
	if cs.state == csFinished {
		return
	}
	cs.state = csFinished
	if cs.c != nil {
		cs.c.Close()
	}
	lr.active--
	if lr.active == 0 {
		lr.stop()
	}
}

// sweep fails requests that waited longer than the timeout.
func (lr *loopRun) sweep() {
	now := int64(lr.l.Now())
	limit := int64(lr.r.o.Timeout)
	for _, cs := range lr.conns {
		if cs.state == csOpen && cs.inflight() > 0 && now-cs.flights[cs.fhead].sent > limit {
			lr.fail(cs, ErrTimeout, errTimeout)
		}
	}
}

var errTimeout = errors.New("no response within the timeout")

// stop ends the loop's part of the run: at the deadline, when every
// connection has finished, or on interruption. Requests still in flight
// are not counted: they have no latency yet.
func (lr *loopRun) stop() {
	if lr.stopping {
		return
	}
	lr.stopping = true
	lr.end = int64(lr.l.Now())
	for _, t := range lr.timers {
		t.Stop()
	}
	if lr.pace.timer != nil {
		lr.pace.timer.Stop()
	}
	for _, cs := range lr.conns {
		if cs.retry != nil {
			cs.retry.Stop()
		}
		if cs.c != nil {
			cs.c.Close()
		}
	}
	lr.r.loopDone()
}

// sendTarget writes the next target's request on cs (--targets).
func (lr *loopRun) sendTarget(cs *connState, due, now int64) {
	var t *treq
	if lr.r.o.RandomTargets {
		t = &cs.ep.treqs[lr.rng.IntN(len(cs.ep.treqs))]
	} else {
		t = &cs.ep.treqs[cs.next]
		cs.next++
		if cs.next == len(cs.ep.treqs) {
			cs.next = 0
		}
	}
	if cs.inflight() == 0 {
		cs.p.reset(t.head)
	}
	cs.c.Write(t.req)
	cs.flights = append(cs.flights, flight{due: due, sent: now, tgt: t.idx})
	lr.inflight++
	lr.st.sent++
	lr.st.bytesWritten += uint64(len(t.req))
	lr.st.byTarget[t.idx].sent++
}

// readTLS decrypts what the adapter holds and hands the plaintext on,
// until crypto/tls needs more bytes.
func (r *runner) readTLS(cs *connState, c mnet.Conn) {
	lr := cs.lr
	for cs.raw == c && cs.state == csOpen && cs.tc != nil {
		n, err := cs.tc.t.Read(lr.plain)
		if n > 0 {
			r.onPlain(cs, lr.plain[:n])
			continue
		}
		if err == nil || err == errWouldBlock {
			return
		}
		// A TLS alert, a bad record, or close_notify: the connection is done.
		if cs.inflight() > 0 {
			lr.fail(cs, ErrClosed, fmt.Errorf("tls: %w", err))
		} else {
			cs.reason = reasonReconnect
			cs.c.Close()
		}
		return
	}
}

// handshakeDone runs on the loop when a connection's TLS handshake ended.
func (r *runner) handshakeDone(cs *connState, c mnet.Conn, tc *tlsConn, err error) {
	lr := cs.lr
	if cs.hs == tc.a {
		cs.hs = nil
	}
	if lr.stopping || cs.state == csFinished {
		if cs.raw == c {
			c.Close()
		}
		return
	}
	open := cs.raw == c
	if err == nil && r.o.HTTP2 {
		if p := tc.t.ConnectionState().NegotiatedProtocol; p != "h2" {
			err = fmt.Errorf("%w: in the TLS handshake (ALPN) it chose %q, not h2", errH2Refused, p)
		}
	}
	if err == nil && open {
		now := int64(lr.l.Now())
		st := tc.t.ConnectionState()
		lr.st.handshake(now-cs.dialAt, &st)
		cs.c, cs.tc = tc, tc
		r.opened(cs)
		// crypto/tls reads ahead: records after the handshake's last (a
		// session ticket, a response) may already sit in its buffer.
		r.readTLS(cs, c)
		return
	}
	if err == nil {
		err = errors.New("connection closed right after the handshake")
	}
	terr := &TLSError{Addr: cs.ep.name, Err: err}
	lr.st.fail(ErrTLS, errors.New(TLSReason(err)))
	if cs.quota > 0 {
		cs.quota--
	}
	if r.o.Rate > 0 {
		lr.pace.consume()
		if lr.pace.done(lr) {
			lr.stop()
			return
		}
	}
	cs.connectFails++
	if !cs.everOpen && cs.connectFails == 1 &&
		r.neverOpened.Add(1) == r.conns && !r.everConnected.Load() {
		r.abort(terr) // no handshake ever worked: say why now
		return
	}
	if open {
		cs.reason = reasonHandshake
		c.Close()
		return
	}
	cs.state = csIdle
	lr.redial(cs)
}

// fillH2 opens as many streams as the connection may have, within the
// quota, and sends them in one write.
func (lr *loopRun) fillH2(cs *connState, now int64) {
	h := cs.h2
	room := h.room(lr.r.o.Streams)
	if cs.quota >= 0 && int64(room) > cs.quota {
		room = int(cs.quota)
	}
	for i := 0; i < room; i++ {
		lr.sendH2(cs, now, now)
	}
	if cs.quota > 0 && room > 0 {
		cs.quota -= int64(room)
	}
	lr.st.bytesWritten += uint64(h.send(cs.c))
	switch {
	case cs.quota == 0 && cs.inflight() == 0:
		lr.finish(cs)
	case h.goaway && cs.inflight() == 0:
		lr.reconnect(cs) // the server wants no more streams here
	}
}

// sendH2 opens one stream (written by the next send).
func (lr *loopRun) sendH2(cs *connState, due, now int64) {
	f := flight{due: due, sent: now}
	cs.h2.request(cs.ep.h2, f)
	// cs.flights only counts the streams open and keeps the oldest send
	// time for the timeout sweep; each stream carries its own flight.
	cs.flights = append(cs.flights, f)
	lr.inflight++
	lr.st.sent++
}

// onH2 reads frames and records the responses they complete.
func (r *runner) onH2(cs *connState, in []byte, now int64) {
	lr := cs.lr
	err := cs.h2.feed(in, func(e h2event) {
		cs.popFlight()
		if e.reset {
			lr.st.fail(ErrClosed, errors.New("http2: stream reset by the server"))
			return
		}
		lr.st.response(e.status, e.f.since(now), (now-e.f.sent)/1e3, now)
	})
	if errors.Is(err, errH2Refused) {
		r.abort(fmt.Errorf("%s: %w", cs.ep.name, err)) // no point in asking again
		return
	}
	if err != nil {
		lr.fail(cs, ErrParse, err)
		return
	}
	lr.st.bytesWritten += uint64(cs.h2.send(cs.c)) // acks and window updates
	lr.fill(cs, now)
}
