// Command nethttpserver is the net/http side of the server comparison in
// docs/benchmarks.md: the same response as `microctl serve` (net/http adds
// the Date header itself), a goroutine per connection. With -h2c it also
// speaks HTTP/2 with prior knowledge on the same port (the HTTP/2 target of
// bench/run.sh, for microctl bench --http2 against h2load).
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8082", "listen address")
	bodySize := flag.Int("body-size", 13, "response body size")
	h2c := flag.Bool("h2c", false, "also serve HTTP/2 without TLS (prior knowledge)")
	flag.Parse()
	body := make([]byte, *bodySize)
	copy(body, "Hello, World!")
	n := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Server"] = []string{"net/http"}
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = []string{n}
		w.Write(body)
	})
	log.Printf("nethttpserver: listening on %s", *addr)
	srv := &http.Server{Addr: *addr, Handler: h}
	if *h2c {
		// net/http's own HTTP/2 server (Go 1.24+), so both clients meet
		// the same well-kept implementation.
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
		// h2load opens streams up to the server's limit; say it.
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1000}
	}
	log.Fatal(srv.ListenAndServe())
}
