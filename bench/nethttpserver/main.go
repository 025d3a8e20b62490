// Command nethttpserver is the net/http side of the server comparison in
// docs/benchmarks.md: the same response as `microctl serve` (net/http adds
// the Date header itself), a goroutine per connection.
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
	log.Fatal(http.ListenAndServe(*addr, h))
}
