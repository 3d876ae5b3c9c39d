package dnsserver

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawExchange sends m over network and returns the reply's wire form as received
// (over TCP without its length prefix).
func rawExchange(t *testing.T, addr, network string, m *dns.Msg) []byte {
	t.Helper()
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if network == "tcp" {
		q = append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)
	}
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := make([]byte, dns.MaxMsgSize)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// TestLogEntryTransportAndSize: each query's entry names its transport and the size of
// the reply the client received, on every path: a miss (ServeDNS), a cache hit read in
// the UDP loop, a cache hit over TCP, a blocked name, a query with EDNS.
func TestLogEntryTransportAndSize(t *testing.T) {
	up := testUpstream(t)
	log := newMemLog()
	_, addr := startServer(t, Options{Config: &Config{}, Policy: testPolicy(), Resolver: newResolver(t, up), Log: log})
	cases := []struct {
		network, name string
		edns          bool
		cache         string
	}{
		{"udp", "a.test", false, ""},    // miss: forwarded
		{"udp", "a.test", false, "hit"}, // the UDP read loop's fast path
		{"tcp", "a.test", false, "hit"}, // cached, through ServeDNS
		{"udp", "a.test", true, "hit"},  // cached, with an OPT record
		{"tcp", "ads.test", false, ""},  // blocked
		{"udp", "nx.test", true, ""},    // NXDOMAIN with its SOA
	}
	seen := map[string]int{}
	for i, c := range cases {
		seen[c.name]++
		m := new(dns.Msg)
		m.SetQuestion(c.name+".", dns.TypeA)
		m.Id = uint16(100 + i)
		if c.edns {
			m.SetEdns0(1232, false)
		}
		reply := rawExchange(t, addr, c.network, m)
		e := log.wait(t, c.name, seen[c.name])[seen[c.name]-1]
		if e.Proto != c.network || e.BytesOut != int64(len(reply)) || e.Cache != c.cache || e.Method != "A" {
			t.Errorf("%s %s: entry proto %q bytes %d cache %q method %q, want %s %d %q A",
				c.network, c.name, e.Proto, e.BytesOut, e.Cache, e.Method, c.network, len(reply), c.cache)
		}
	}
	// A type without a mnemonic is logged as TYPEn.
	m := new(dns.Msg)
	m.SetQuestion("a.test.", 65400)
	rawExchange(t, addr, "udp", m)
	if e := log.wait(t, "a.test", 5)[4]; e.Method != "TYPE65400" {
		t.Errorf("method %q", e.Method)
	}
}
