package forward

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/internal/h1"
)

// BenchmarkH1Forward1KiB is scenario d in one process: keep-alive clients on
// loopback send wrk's absolute-form GET of 1 KiB through the door served by
// internal/h1 (the default elite profile, the real upstream client, an
// access log that discards) to an origin that allocates nothing, so that
// allocs/op are the server's per forward GET (h1, door, relay, upstream
// client), comparable with reverse's BenchmarkH1Reverse1KiB; cpu-ns/op
// counts the origin's and the clients' work too.
func BenchmarkH1Forward1KiB(b *testing.B) {
	origin := rawOrigin(b)
	elite := anonymize.Elite()
	p, err := New(Options{
		Anonymizer: func(string) Anonymizer { return elite },
		Log:        discardLog{},
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &h1.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	req := []byte("GET http://" + origin + "/small HTTP/1.1\r\nHost: " + origin + "\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(1024)
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 8192)
		for pb.Next() {
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			if n, err := read200(br); err != nil || n != 1024 {
				b.Errorf("%d bytes, %v", n, err)
				return
			}
		}
	})
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// read200 reads one 200 response with a Content-Length and returns its body's size.
func read200(br *bufio.Reader) (int, error) {
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

// rawOrigin is an origin on loopback (its host:port returned) that answers
// every request head with the bench origin's /small (1 KiB, Content-Length,
// Content-Type, Date) without allocating per request.
func rawOrigin(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
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
					for {
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
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return ln.Addr().String()
}
