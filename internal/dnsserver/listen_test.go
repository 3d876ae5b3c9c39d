package dnsserver

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

func TestListenAndServe(t *testing.T) {
	up := testUpstream(t)
	// ListenAndServe binds a fixed port (SO_REUSEPORT needs one): the test picks a
	// free port, and retries with another when something else took it in between.
	var (
		addr   string
		cancel context.CancelFunc
		done   chan error
	)
	for attempt := 0; ; attempt++ {
		var srv *Server
		addr, srv = freePortServer(t, up)
		var ctx context.Context
		ctx, cancel = context.WithCancel(t.Context())
		done = make(chan error, 1)
		go func() { done <- srv.ListenAndServe(ctx) }()
		err := waitAnswering(addr, done)
		if err == nil {
			break
		}
		cancel()
		if attempt == 20 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
	for range 20 {
		if r := ask(t, addr, "udp", teacher, "a.test", dns.TypeA, false); len(r.Answer) != 1 {
			t.Fatalf("udp: %v", r)
		}
	}
	if r := ask(t, addr, "tcp", teacher, "a.test", dns.TypeA, false); len(r.Answer) != 1 {
		t.Fatalf("tcp: %v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe: %v", err)
	}
	// The sockets are released: the address can be bound again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP socket still bound after shutdown: %v", err)
	}
	ln.Close()

	// An address in use is an error, not a hang.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	srv2, _ := New(Options{Config: &Config{Listen: []string{busy.Addr().String()}}})
	if err := srv2.ListenAndServe(t.Context()); err == nil {
		t.Fatal("ListenAndServe on a busy address returned nil")
	}
}

// freePortServer returns a server configured to listen on a port that was free a
// moment ago.
func freePortServer(t *testing.T, up *resolvertest.Upstream) (string, *Server) {
	t.Helper()
	addr := freeTCPAndUDPPort(t)
	srv, err := New(Options{Config: &Config{Listen: []string{addr}}, Resolver: newResolver(t, up)})
	if err != nil {
		t.Fatal(err)
	}
	return addr, srv
}

// freeTCPAndUDPPort returns a loopback address whose port was free for both
// TCP and UDP a moment ago. A port free for UDP is often taken for TCP on a
// busy machine (the ephemeral ports of other tests' connections), so both
// are bound before the port is handed out.
func freeTCPAndUDPPort(t *testing.T) string {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP in 100 tries")
	return ""
}

// waitAnswering polls addr (an external effect, with a deadline) until the server
// answers, or returns why it stopped or never came up.
func waitAnswering(addr string, done <-chan error) error {
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _, err := c.Exchange(q, addr)
		if err == nil && len(r.Answer) == 1 {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("ListenAndServe returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not answering: %v", err)
		}
	}
}
