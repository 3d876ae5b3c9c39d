package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// TestInFlightBounds holds upstream answers with gates and checks the bounds on
// queries waiting for an upstream, on the server's own UDP loop and on miekg's
// (wildcard sockets): a client gets max_inflight_per_client slots, everyone
// together max_inflight; a miss beyond them is dropped and logged; cached names
// are answered meanwhile (plain, with an EDNS option, over TCP); once the
// upstream answers, the slots are free again.
func TestInFlightBounds(t *testing.T) {
	for _, variant := range udpPaths() {
		t.Run(variant.name, func(t *testing.T) {
			up := resolvertest.New(3600, 60).Add(t, "a.test. 300 IN A 192.0.2.1")
			var release []func()
			for _, n := range []string{"s1", "s2", "s3", "s4", "s5"} {
				release = append(release, up.Gate(n+".slow.test"))
			}
			up.Start(t)
			releaseAll := func() {
				for _, r := range release {
					r()
				}
			}
			defer releaseAll()
			log, addr := startForwarder(t, up.Addr, &Config{MaxInFlight: 3, MaxInFlightPerClient: 2}, variant.wrap)
			a, b := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
			for _, from := range []netip.Addr{a, b} { // fill the cache for a.test
				if r := ask(t, addr, "udp", from, "a.test", dns.TypeA, false); !slices.Equal(answers(r), []string{"192.0.2.1"}) {
					t.Fatalf("a.test: %v", r)
				}
			}
			send := sender(t, addr)
			arrived := func(want ...string) {
				t.Helper()
				var got []string
				timeout := time.After(10 * time.Second)
				for len(got) < len(want) {
					select {
					case n := <-up.Arrived():
						got = append(got, strings.TrimSuffix(n, "."))
					case <-timeout:
						t.Fatalf("upstream saw %v, want %v", got, want)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("upstream saw %v, want %v", got, want)
				}
			}
			dropped := func(name string) {
				t.Helper()
				e := log.wait(t, name, 1)[0]
				if !strings.Contains(e.Error, "dropped") {
					t.Fatalf("%s: logged %+v, want dropped", name, e)
				}
			}
			// Client a: two slots, the third miss is dropped.
			send(a, "s1.slow.test")
			send(a, "s2.slow.test")
			arrived("s1.slow.test", "s2.slow.test")
			send(a, "s3.slow.test")
			dropped("s3.slow.test")
			// Client b: the last slot of three, then nothing is left.
			send(b, "s4.slow.test")
			arrived("s4.slow.test")
			send(b, "s5.slow.test")
			dropped("s5.slow.test")
			// Cached answers do not wait for slots.
			if r := ask(t, addr, "udp", b, "a.test", dns.TypeA, false); !slices.Equal(answers(r), []string{"192.0.2.1"}) {
				t.Fatalf("cached a.test: %v", r)
			}
			m := new(dns.Msg)
			m.SetQuestion("a.test.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
			if r := exchange(t, addr, "udp", b, m); !slices.Equal(answers(r), []string{"192.0.2.1"}) {
				t.Fatalf("cached a.test with a cookie: %v", r)
			}
			if r := ask(t, addr, "tcp", b, "a.test", dns.TypeA, false); !slices.Equal(answers(r), []string{"192.0.2.1"}) {
				t.Fatalf("cached a.test over TCP: %v", r)
			}
			// The upstream answers: the slots are free again.
			releaseAll()
			log.wait(t, "s1.slow.test", 1)
			log.wait(t, "s2.slow.test", 1)
			log.wait(t, "s4.slow.test", 1)
			if r := ask(t, addr, "udp", a, "s3.slow.test", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
				t.Fatalf("s3 after the release: %v", r)
			}
		})
	}
}

// udpPaths are the server's two UDP paths: its own read loop (a socket bound
// to one address) and miekg's (wildcard sockets).
func udpPaths() []struct {
	name string
	wrap func(net.PacketConn) net.PacketConn
} {
	return []struct {
		name string
		wrap func(net.PacketConn) net.PacketConn
	}{
		{"own-loop", func(pc net.PacketConn) net.PacketConn { return pc }},
		{"miekg", func(pc net.PacketConn) net.PacketConn { return miekgOnly{pc} }},
	}
}

// startForwarder starts a server with cfg forwarding to the upstream at
// upAddr (a long timeout: the test's gates, not timeouts, end the flights),
// and returns its log and address.
func startForwarder(t *testing.T, upAddr string, cfg *Config, wrap func(net.PacketConn) net.PacketConn) (*memLog, string) {
	t.Helper()
	res, err := resolver.New(resolver.Config{Upstreams: []string{upAddr}, Timeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	log := newMemLog()
	_, addr := startServerWith(t, Options{Config: cfg, Resolver: res, Log: log}, wrap)
	return log, addr
}

// sender returns a function that sends one A query for name from the loopback
// address from to addr over UDP without waiting for an answer.
func sender(t *testing.T, addr string) func(from netip.Addr, name string) {
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr))
	conns := map[netip.Addr]*net.UDPConn{}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return func(from netip.Addr, name string) {
		t.Helper()
		c := conns[from]
		if c == nil {
			var err error
			if c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), dst); err != nil {
				t.Fatal(err)
			}
			conns[from] = c
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInFlightConfig(t *testing.T) {
	over := &Config{MaxInFlight: 10, MaxInFlightPerClient: 11}
	if errs := over.Validate(); len(errs) != 1 || errs[0].Path != "max_inflight_per_client" {
		t.Fatalf("per client above the total: %v", errs)
	}
	d := (&Config{}).withDefaults()
	if d.MaxInFlight != DefaultMaxInFlight || d.MaxInFlightPerClient != DefaultMaxInFlightPerClient {
		t.Fatalf("defaults: %d, %d", d.MaxInFlight, d.MaxInFlightPerClient)
	}
	if small := (&Config{MaxInFlight: 50}).withDefaults(); small.MaxInFlightPerClient != 50 {
		t.Fatalf("per client default above a small total: %d", small.MaxInFlightPerClient)
	}
}

// TestInFlightSlotFreeOnceAnswered asks one miss after another from one client
// allowed a single slot: each query is sent the moment the previous answer
// arrives, so the slot must be free by the time the answer is sent, on both UDP
// paths. A slot given back only after the answer left drops some of these.
func TestInFlightSlotFreeOnceAnswered(t *testing.T) {
	for _, variant := range udpPaths() {
		t.Run(variant.name, func(t *testing.T) {
			const queries = 300
			up := resolvertest.New(3600, 60)
			for i := range queries {
				up.Add(t, fmt.Sprintf("n%d.test. 300 IN A 192.0.2.1", i))
			}
			up.Start(t)
			log, addr := startForwarder(t, up.Addr, &Config{MaxInFlight: 1, MaxInFlightPerClient: 1}, variant.wrap)
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, dns.MaxMsgSize)
			for i := range queries {
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf("n%d.test.", i), dns.TypeA)
				pkt, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(pkt); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("query %d of %d (n%d.test) got no answer: %v; log: %+v", i+1, queries, i, err, log.wait(t, fmt.Sprintf("n%d.test", i), 1))
				}
				r := new(dns.Msg)
				if err := r.Unpack(buf[:n]); err != nil || r.Id != m.Id || !slices.Equal(answers(r), []string{"192.0.2.1"}) {
					t.Fatalf("query %d: %v %v", i, r, err)
				}
			}
		})
	}
}
