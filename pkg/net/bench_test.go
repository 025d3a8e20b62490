package net

import (
	"sync/atomic"
	"testing"
)

// BenchmarkTrigger is the cost of waking a loop from another goroutine
// while it is busy: with coalescing most triggers only queue their function.
func BenchmarkTrigger(b *testing.B) {
	for _, name := range engineList() {
		b.Run(name, func(b *testing.B) {
			e := startEngine(b, nopHandler{}, WithEngine(name), WithLoops(1))
			l := e.Loops()[0]
			var ran atomic.Int64
			fn := func() { ran.Add(1) }
			b.ReportAllocs()
			for b.Loop() {
				l.Trigger(fn)
			}
			b.StopTimer()
			for ran.Load() < int64(b.N) {
				l.Trigger(nil)
			}
		})
	}
}

// BenchmarkOutBuffer appends a small response and sends it, as the server
// does per request.
func BenchmarkOutBuffer(b *testing.B) {
	var pool chunkPool
	var buf outBuffer
	resp := make([]byte, 130)
	var iov [][]byte
	b.ReportAllocs()
	for b.Loop() {
		buf.write(&pool, resp)
		iov = buf.peek(iov[:0], maxIovTest)
		buf.discard(&pool, len(iov[0]))
	}
}

const maxIovTest = 16
