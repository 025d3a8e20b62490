package netns

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// HTTPGet fetches http://addr/path with a plain HTTP/1.0 request on a
// connection dialled from the calling goroutine (net/http would dial from
// another goroutine, possibly on a thread outside the namespace). It
// returns the status line and the body.
func HTTPGet(addr, path string, timeout time.Duration) (status, body string, err error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		return "", "", err
	}
	r := bufio.NewReader(c)
	status, err = r.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	for { // headers
		line, err := r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		if strings.TrimSpace(line) == "" {
			break
		}
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return strings.TrimSpace(status), b.String(), nil
}

// pingSocket reports whether an engine answers /_ping on a unix socket.
func pingSocket(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(c, "GET /_ping HTTP/1.0\r\n\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.Contains(line, " 200 ")
}
