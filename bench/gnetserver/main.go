// Command gnetserver is the gnet v2 side of the server comparison in
// docs/benchmarks.md: the same response as `microctl serve` (status line,
// Server, Date, Content-Type, Content-Length, a 13-byte body), with
// keep-alive and pipelining, on one or more gnet event loops.
//
// Its request parsing is as small as gnet's own HTTP benchmark example:
// requests are split at the blank line; a Content-Length body is skipped.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

type server struct {
	gnet.BuiltinEventEngine
	addr     string
	loops    int
	response atomic.Pointer[[]byte]
	body     []byte
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	log.Printf("gnetserver: listening on %s (%d loops)", s.addr, s.loops)
	return gnet.None
}

// OnTick rebuilds the response with the current Date every second, as
// microctl serve does.
func (s *server) OnTick() (time.Duration, gnet.Action) {
	r := []byte("HTTP/1.1 200 OK\r\nServer: gnet\r\nDate: " + time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") +
		"\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(s.body)) + "\r\n\r\n")
	r = append(r, s.body...)
	s.response.Store(&r)
	return time.Second, gnet.None
}

var crlfcrlf = []byte("\r\n\r\n")

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	resp := *s.response.Load()
	var out []byte
	used := 0
	for {
		i := bytes.Index(buf[used:], crlfcrlf)
		if i < 0 {
			break
		}
		end := used + i + 4
		n := contentLength(buf[used:end])
		if end+n > len(buf) {
			break // body not all here yet
		}
		used = end + n
		out = append(out, resp...)
	}
	if used > 0 {
		c.Discard(used)
		c.Write(out)
	}
	return gnet.None
}

func contentLength(head []byte) int {
	i := bytes.Index(bytes.ToLower(head), []byte("\r\ncontent-length:"))
	if i < 0 {
		return 0
	}
	rest := head[i+len("\r\ncontent-length:"):]
	if j := bytes.IndexByte(rest, '\r'); j >= 0 {
		rest = rest[:j]
	}
	n, _ := strconv.Atoi(string(bytes.TrimSpace(rest)))
	return n
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	loops := flag.Int("loops", 1, "event loops")
	bodySize := flag.Int("body-size", 13, "response body size")
	flag.Parse()
	body := make([]byte, *bodySize)
	copy(body, "Hello, World!")
	s := &server{addr: *addr, loops: *loops, body: body}
	s.OnTick()
	err := gnet.Run(s, "tcp://"+*addr,
		gnet.WithNumEventLoop(*loops),
		gnet.WithReusePort(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTicker(true),
	)
	if err != nil {
		log.Fatal(fmt.Errorf("gnet: %w", err))
	}
}
