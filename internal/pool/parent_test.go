package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectParent is a loopback parent proxy that answers every CONNECT with
// status and then echoes what it receives, recording the requests' heads.
type connectParent struct {
	ln     net.Listener
	status int
	mu     sync.Mutex
	heads  []string
	wg     sync.WaitGroup
}

func newConnectParent(t *testing.T, status int) *connectParent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp := &connectParent{ln: ln, status: status}
	cp.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cp.wg.Go(func() { cp.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); cp.wg.Wait() })
	return cp
}

func (cp *connectParent) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	cp.mu.Lock()
	cp.heads = append(cp.heads, req.Method+" "+req.Host+" "+req.Header.Get("Proxy-Authorization"))
	cp.mu.Unlock()
	if cp.status != http.StatusOK {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", cp.status, http.StatusText(cp.status))
		return
	}
	// The answer and the first bytes of the tunnel in one write: the pool must
	// not lose what it read past the answer's head.
	_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\nhello ")
	_, _ = io.Copy(c, br)
}

func (cp *connectParent) URL() string { return "http://" + cp.ln.Addr().String() }

func (cp *connectParent) seen() []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]string(nil), cp.heads...)
}

func TestDialConnectFailsOverToNextParent(t *testing.T) {
	live := newConnectParent(t, http.StatusOK)
	p := newPool(t, Config{Parent: true, Policy: PolicyFirst, Credentials: "u:p w\n",
		Members: []MemberConfig{{URL: deadAddr(t)}, {URL: live.URL()}}})
	info := &Info{}
	c, err := p.DialConnect(WithInfo(context.Background(), info), "site.test:443")
	if err != nil {
		t.Fatalf("DialConnect: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "world"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("hello world"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello world" {
		t.Fatalf("tunnel read %q, %v; want %q", buf, err, "hello world")
	}
	if info.Member != live.URL() || info.Attempts != 2 {
		t.Errorf("info %+v, want the live parent after 2 attempts", info)
	}
	if got := live.seen(); len(got) != 1 || got[0] != "CONNECT site.test:443 Basic dTpwIHc=" {
		t.Errorf("parent saw %q", got)
	}
	if st := p.Status()[0]; st.Failures != 1 {
		t.Errorf("dead parent's failures = %d, want 1", st.Failures)
	}
}

func TestDialConnectRefusalIsNotRetried(t *testing.T) {
	a := newConnectParent(t, http.StatusForbidden)
	b := newConnectParent(t, http.StatusOK)
	p := newPool(t, Config{Parent: true, Policy: PolicyFirst, Members: []MemberConfig{{URL: a.URL()}, {URL: b.URL()}}})
	c, err := p.DialConnect(context.Background(), "blocked.test:443")
	if err == nil {
		c.Close()
	}
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
		t.Fatalf("err = %v, want the parent's 403", err)
	}
	if n := len(b.seen()); n != 0 {
		t.Errorf("a refusal was retried on the other parent (%d requests)", n)
	}
	if st := p.Status()[0]; st.Failures != 0 {
		t.Errorf("a refusal counted against the parent (%d failures)", st.Failures)
	}
}

func TestParentTransportSendsAbsoluteForm(t *testing.T) {
	got := make(chan string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- req.RequestURI + " " + req.Header.Get("Proxy-Authorization")
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	}()
	p := newPool(t, Config{Parent: true, Credentials: "u:p", Members: []MemberConfig{{URL: "http://" + ln.Addr().String()}}})
	resp, err := get(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if s := <-got; s != "http://site.test/x Basic dTpw" {
		t.Fatalf("parent got %q, want the absolute URL with Proxy-Authorization", s)
	}
}

func TestTCPHealthCheck(t *testing.T) {
	live := newConnectParent(t, http.StatusOK)
	p := newPool(t, Config{Parent: true, Health: HealthConfig{TCP: true, Fall: 1, Rise: 1},
		Members: []MemberConfig{{URL: deadAddr(t)}, {URL: live.URL()}}})
	p.CheckNow(context.Background())
	st := p.Status()
	if st[0].Healthy || !strings.Contains(st[0].LastError, "TCP connect") {
		t.Errorf("dead parent: %+v, want down with a TCP connect error", st[0])
	}
	if !st[1].Healthy {
		t.Errorf("live parent: %+v, want up", st[1])
	}
	if n := len(live.seen()); n != 0 {
		t.Errorf("the TCP check sent %d requests", n)
	}
}

func TestParseCredentials(t *testing.T) {
	for _, tc := range []struct{ in, user, pass, err string }{
		{"alice:pw\n", "alice", "pw", ""},
		{"alice:p:w", "alice", "p:w", ""},
		{"alice:", "alice", "", ""},
		{"secretnocolon", "", "", "want user:password"},
		{":pw", "", "", "user name"},
		{"a:b\nc:d", "", "", "one line"},
	} {
		u, p, err := ParseCredentials(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: err %v, want %q without the content", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("%q: %q %q %v", tc.in, u, p, err)
		}
	}
}

func TestValidateParent(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Parent: true, Members: []MemberConfig{{URL: "https://p:3128"}}}, "members[0].url: a parent proxy is http://host:port"},
		{Config{Parent: true, Members: []MemberConfig{{URL: "http://p:3128/x"}}}, "members[0].url: a parent proxy is http://host:port"},
		{Config{CredentialsFile: "f", Members: []MemberConfig{{URL: "http://p:3128"}}}, "credentials_file: only parent proxies"},
		{Config{Health: HealthConfig{TCP: true, Path: "/h"}, Members: []MemberConfig{{URL: "http://p:3128"}}}, "health.tcp: a check is either tcp or a GET"},
	} {
		errs := tc.cfg.Validate()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, errs, tc.want)
		}
	}
}
