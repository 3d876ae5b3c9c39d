// Package benchwire holds the raw HTTP/1.1 ends the doors' in-process
// benchmarks share: an origin that allocates nothing per request, and a
// response reader that allocates nothing, so a benchmark's allocs/op are the
// proxy's own. Tests only.
package benchwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
)

// Origin starts an origin on loopback, stopped when tb ends, that answers
// every request head with the bench origin's /small (1 KiB, Content-Length,
// Content-Type, Date) without allocating per request, so that a benchmark's
// allocs/op are the proxy's. It returns the origin's URL (http://host:port).
func Origin(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 14:15:40 GMT\r\n\r\n" + string(bytes.Repeat([]byte("x"), 1024)))
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for { // the head, up to its empty line (GETs: no body)
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return "http://" + ln.Addr().String()
}

// ReadOK reads one 200 response with a Content-Length from br and returns
// its body's length, without allocating.
func ReadOK(br *bufio.Reader) (int, error) {
	n, first := -1, true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return 0, fmt.Errorf("status line %q", line)
			}
			first = false
			continue
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, d := range bytes.TrimSpace(v) {
				n = n*10 + int(d-'0')
			}
		}
	}
	if n < 0 {
		return 0, errors.New("no Content-Length")
	}
	_, err := br.Discard(n)
	return n, err
}

// Clients runs b's loop on keep-alive connections to addr, one per
// RunParallel goroutine: each iteration writes req and reads a 200 response
// whose body must be size bytes (ReadOK, through a reader of bufSize bytes).
func Clients(b *testing.B, addr string, req []byte, size, bufSize int) {
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, bufSize)
		for pb.Next() {
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			if n, err := ReadOK(br); err != nil || n != size {
				b.Errorf("%d bytes, %v", n, err)
				return
			}
		}
	})
}
