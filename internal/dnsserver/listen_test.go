package dnsserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestListenAndServe(t *testing.T) {
	up := testUpstream(t)
	// A port free for UDP and TCP right now.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	srv, err := New(Options{Config: &Config{Listen: []string{addr}}, Resolver: newResolver(t, up)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()

	// Observe the server coming up (an external effect): poll with a deadline.
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _, err := c.Exchange(q, addr)
		if err == nil && len(r.Answer) == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("ListenAndServe returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not answering: %v", err)
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
