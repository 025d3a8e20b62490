package bench

import (
	"context"
	"testing"
)

// BenchmarkResponseParser parses the built-in server's response, the
// per-request parsing cost of the client.
func BenchmarkResponseParser(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: microctl\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
		"Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	var p responseParser
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		p.reset(false)
		if _, done, err := p.feed(resp); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// BenchmarkChunkedResponse parses a chunked response split in two reads.
func BenchmarkChunkedResponse(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	var p responseParser
	b.ReportAllocs()
	for b.Loop() {
		p.reset(false)
		p.feed(resp[:20])
		if _, done, err := p.feed(resp[20:]); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// BenchmarkRoundTrip runs the client against the built-in server in the
// same process over loopback: a request/response per iteration, one
// connection, so it measures latency per round trip, not throughput. The
// throughput comparisons are bench/run.sh's job.
func BenchmarkRoundTrip(b *testing.B) {
	srv, err := NewServer(WithServerAddr("127.0.0.1:0"), WithServerLoops(1))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(context.Background())
	b.ResetTimer()
	res, err := Run(context.Background(), WithURL("http://"+srv.Addr().String()+"/"),
		WithRequests(int64(b.N)), WithConnections(1), WithLoops(1))
	if err != nil {
		b.Fatal(err)
	}
	if res.Requests != uint64(b.N) {
		b.Fatalf("%d responses for %d requests", res.Requests, b.N)
	}
}
