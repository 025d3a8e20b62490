// Package net is microctl's event-loop networking: a reactor of N loops,
// each with its own poller, serving many non-blocking TCP connections
// without a goroutine per connection. microctl bench and microctl serve run
// on it.
//
// On Linux the engine is epoll (package files *_linux.go): each loop is
// locked to an OS thread and owns an epoll instance and a non-blocking
// eventfd. It avoids the three defects found in evio (see docs/bench.md):
//
//   - Wake-ups are coalesced: Loop.Trigger writes the eventfd only when no
//     wake-up is already pending, and the loop drains the eventfd before it
//     runs the queued work, so a million triggers leave the loop idle.
//   - Listening uses one SO_REUSEPORT socket per loop (or one socket
//     registered with EPOLLEXCLUSIVE, which the kernel documents as waking
//     "one or more" loops), so a new connection wakes one loop.
//   - Output is appended to a per-connection buffer and never replaced;
//     EPOLLOUT is armed only while output is pending, and several pending
//     chunks go out in one writev.
//
// Elsewhere, and on Linux when asked with WithEngine(EngineGo), the engine
// is built on Go's net package with the same callbacks and guarantees, so
// programs work everywhere and say which engine they use (Engine.Name).
//
// The model, as in evio and gnet: register a Handler, then Listen and/or
// Dial. Every callback of one connection runs on that connection's loop,
// one at a time, so handler state per connection needs no locks. Conn
// methods may only be called on the loop (inside a callback, a timer or a
// function passed to Loop.Trigger); other goroutines reach a loop through
// Trigger.
package net
