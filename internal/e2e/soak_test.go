package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakDuration is how long TestSoak drives traffic: 5s by default,
// PORTCULLIS_SOAK (a Go duration such as 5m) when set.
func soakDuration(t *testing.T) time.Duration {
	if s := os.Getenv("PORTCULLIS_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("PORTCULLIS_SOAK: %v", err)
		}
		return d
	}
	if testing.Short() {
		return time.Second
	}
	return 5 * time.Second
}

// startEcho runs a TCP echo server on loopback until the test ends.
func startEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSoak drives mixed traffic through both doors — forward GETs and POSTs,
// CONNECT tunnels, reverse GETs — for soakDuration, requires every exchange to
// succeed, then stops everything and checks goroutines and heap return near their
// baseline.
func TestSoak(t *testing.T) {
	runtime.GC()
	baseG := runtime.NumGoroutine()
	baseHeap := heapInUse()
	var served atomic.Int64
	t.Run("traffic", func(t *testing.T) {
		o := startOrigin(t, nil)
		echo := startEcho(t)
		_, echoPort, _ := net.SplitHostPort(echo)
		p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s]
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: site, host: [site.test], pool: site}]
pools:
  site: {members: [{url: %q}]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
rules:
  - {name: no-secret, path: ["/secret*"], action: block}
`, echoPort, o.url()), nil, "forward", "reverse")
		fwdTr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.fwd()}), MaxIdleConnsPerHost: 16}
		revTr := &http.Transport{MaxIdleConnsPerHost: 16}
		defer fwdTr.CloseIdleConnections()
		defer revTr.CloseIdleConnections()
		fwd := &http.Client{Transport: fwdTr, Timeout: 10 * time.Second}
		rev := &http.Client{Transport: revTr, Timeout: 10 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), soakDuration(t))
		defer cancel()
		body := bytes.Repeat([]byte("p"), 32<<10)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		fail := func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					if err := soakOne(w, i, fwd, rev, p, o, echo, body); err != nil {
						fail(err)
						return
					}
					served.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Logf("%d exchanges served in the soak", served.Load())
	if served.Load() == 0 {
		t.Fatal("no traffic")
	}
	waitFor(t, 15*time.Second, fmt.Sprintf("goroutines back near the baseline of %d", baseG), func() bool {
		return runtime.NumGoroutine() <= baseG+3
	})
	if grown := heapInUse() - baseHeap; grown > 16<<20 {
		t.Errorf("heap in use grew by %d bytes after the soak", grown)
	}
}

// soakOne is one exchange of worker w: a forward GET, a forward POST, a blocked
// forward GET, a CONNECT echo or a reverse GET, in turn.
func soakOne(w, i int, fwd, rev *http.Client, p *proxy, o *origin, echo string, body []byte) error {
	switch (w + i) % 5 {
	case 0, 1:
		var resp *http.Response
		var err error
		path := fmt.Sprintf("/w%d/%d", w, i)
		if i%2 == 0 {
			resp, err = fwd.Get(o.url() + path)
		} else {
			resp, err = fwd.Post(o.url()+path, "application/octet-stream", bytes.NewReader(body))
		}
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.HasSuffix(string(b), path) {
			return fmt.Errorf("forward %s: %d %q %v", path, resp.StatusCode, b, err)
		}
	case 2:
		resp, err := fwd.Get(o.url() + "/secret")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			return fmt.Errorf("blocked path: %d", resp.StatusCode)
		}
	case 3:
		c, err := net.Dial("tcp", p.fwd())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo, echo)
		br := newReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("CONNECT: %v %v", resp, err)
		}
		msg := fmt.Sprintf("ping %d %d\n", w, i)
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			return fmt.Errorf("tunnel echo: %q %v", got, err)
		}
	case 4:
		req, _ := http.NewRequest("GET", "http://"+p.addrs["reverse"]+fmt.Sprintf("/r%d/%d", w, i), nil)
		req.Host = "site.test"
		resp, err := rev.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "origin:GET /r") {
			return fmt.Errorf("reverse: %d %q", resp.StatusCode, b)
		}
	}
	return nil
}
