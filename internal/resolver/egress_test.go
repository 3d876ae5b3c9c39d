package resolver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestDeniedReason(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1":                "loopback",
		"127.255.0.9":              "loopback",
		"::1":                      "loopback",
		"::ffff:127.0.0.1":         "loopback",
		"10.1.2.3":                 "private",
		"172.16.0.1":               "private",
		"172.31.255.255":           "private",
		"192.168.1.1":              "private",
		"::ffff:10.0.0.1":          "private",
		"169.254.169.254":          "cloud metadata",
		"::ffff:169.254.169.254":   "cloud metadata",
		"fd00:ec2::254":            "cloud metadata",
		"169.254.1.1":              "link-local",
		"fe80::1":                  "link-local",
		"fe80::1%eth0":             "link-local",
		"100.64.0.1":               "cgnat",
		"100.127.255.255":          "cgnat",
		"fc00::1":                  "unique-local",
		"fd12:3456::1":             "unique-local",
		"224.0.0.1":                "multicast",
		"239.1.2.3":                "multicast",
		"ff02::1":                  "multicast",
		"ff05::2":                  "multicast",
		"0.0.0.0":                  "unspecified",
		"::":                       "unspecified",
		"0.1.2.3":                  "this network",
		"255.255.255.255":          "reserved",
		"240.0.0.1":                "reserved",
		"::127.0.0.1":              "ipv4-compatible",
		"64:ff9b::7f00:1":          "loopback (nat64)",
		"64:ff9b::a9fe:a9fe":       "cloud metadata (nat64)",
		"2002:7f00:1::1":           "loopback (6to4)",
		"2002:a00:1::1":            "private (6to4)",
		"198.18.0.1":               "benchmarking",
		"192.0.0.8":                "ietf protocol assignment",
		"8.8.8.8":                  "",
		"1.1.1.1":                  "",
		"100.128.0.1":              "",
		"172.32.0.1":               "",
		"192.0.2.1":                "",
		"2606:4700:4700::1111":     "",
		"64:ff9b::808:808":         "",
		"2002:808:808::1":          "",
		"2001:db8::1":              "",
		"::ffff:93.184.216.34":     "",
		"fec0::1":                  "",
		"169.253.255.255":          "",
		"2a00:1450:4001:80b::200e": "",
	}
	for s, want := range cases {
		if got := DeniedReason(netip.MustParseAddr(s)); got != want {
			t.Errorf("DeniedReason(%s) = %q, want %q", s, got, want)
		}
	}
	if DeniedReason(netip.Addr{}) == "" {
		t.Error("the zero Addr is allowed")
	}
}

func TestGuardAllow(t *testing.T) {
	g := NewGuard([]EgressAllow{mustAllow(t, "10.20.0.0/16"), mustAllow(t, "::1/128"), mustAllow(t, "127.0.0.1/32:8080,9000-9009")}, nil)
	for _, s := range []string{"10.20.1.1:1", "[::ffff:10.20.1.1]:80", "[::1]:22", "8.8.8.8:53", "127.0.0.1:8080", "127.0.0.1:9005"} {
		if err := g.Check(s, netip.MustParseAddrPort(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range []string{"10.21.0.1:80", "127.0.0.1:8081", "127.0.0.1:9010", "127.0.0.2:8080", "169.254.169.254:80"} {
		err := g.Check("host", netip.MustParseAddrPort(s))
		var ee *EgressError
		if !errors.Is(err, ErrEgressDenied) || !errors.As(err, &ee) || netip.AddrPortFrom(ee.Addr, ee.Port).String() != s {
			t.Errorf("%s: err = %v", s, err)
		}
	}
	if err := g.control(t.Context(), "tcp4", "127.0.0.1:80", nil); !errors.Is(err, ErrEgressDenied) {
		t.Errorf("control(127.0.0.1:80) = %v", err)
	}
	if err := g.control(t.Context(), "tcp4", "10.20.3.4:80", nil); err != nil {
		t.Errorf("control(10.20.3.4:80) = %v", err)
	}
}

func mustAllow(t *testing.T, s string) EgressAllow {
	t.Helper()
	e, err := ParseEgressAllow(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestParseEgressAllow(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":              "10.0.0.0/8",
		"127.0.0.1/32:8080,8443":  "127.0.0.1/32:8080,8443",
		"127.0.0.1:8080":          "127.0.0.1/32:8080",
		"127.0.0.1":               "127.0.0.1/32",
		"::1":                     "::1/128",
		"::1/128:8080":            "::1/128:8080",
		"fd00::/8:80, 8000-8099":  "fd00::/8:80,8000-8099",
		" 192.168.0.0/16:443 ":    "192.168.0.0/16:443",
		"[::1]:80":                "",
		"10.0.0.1/8":              "10.0.0.0/8",
		"10.0.0.0/8:":             "",
		"10.0.0.0/8:0":            "",
		"10.0.0.0/8:65536":        "",
		"10.0.0.0/8:90-80":        "",
		"10.0.0.0/8:http":         "",
		"intranet.school.lan/24":  "",
		"10.0.0.0/33":             "",
		"127.0.0.1/32:8080,,8443": "",
	} {
		got, err := ParseEgressAllow(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("ParseEgressAllow(%q) = %v, want an error", in, got)
		case want != "" && err != nil:
			t.Errorf("ParseEgressAllow(%q): %v", in, err)
		case want != "" && got.String() != want:
			t.Errorf("ParseEgressAllow(%q) = %v, want %s", in, got, want)
		}
	}
}

func TestGuardRefusesOwnListeners(t *testing.T) {
	var self Listeners
	self.Set([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9090"), netip.MustParseAddrPort("0.0.0.0:3128"), netip.MustParseAddrPort("[::]:8053")})
	g := NewGuard([]EgressAllow{mustAllow(t, "127.0.0.0/8"), mustAllow(t, "::1/128")}, &self)
	for _, s := range []string{"127.0.0.1:9090", "[::ffff:127.0.0.1]:9090", "127.0.0.1:3128", "127.0.0.5:3128", "[::1]:3128", "[::1]:8053", "127.0.0.1:8053"} {
		err := g.Check("h", netip.MustParseAddrPort(s))
		var ee *EgressError
		if !errors.As(err, &ee) || !strings.Contains(ee.Reason, "own listeners") {
			t.Errorf("%s (a listener of this process) not refused: %v", s, err)
		}
	}
	for _, s := range []string{"127.0.0.1:9091", "127.0.0.2:9090", "[::1]:9090", "8.8.8.8:3128"} {
		if err := g.Check("h", netip.MustParseAddrPort(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	self.Set(nil) // a reload closed them
	if err := g.Check("h", netip.MustParseAddrPort("127.0.0.1:9090")); err != nil {
		t.Errorf("a closed listener still refused: %v", err)
	}
}

func TestParseLiteral(t *testing.T) {
	cases := []struct {
		host    string
		literal bool
		addr    string // "" = refused when literal
	}{
		{"127.0.0.1", true, "127.0.0.1"},
		{"[::1]", true, "::1"},
		{"::ffff:127.0.0.1", true, "::ffff:127.0.0.1"},
		{"8.8.8.8.", true, "8.8.8.8"},
		{"2130706433", true, ""},
		{"0x7f000001", true, ""},
		{"0x7f.0.0.1", true, ""},
		{"0177.0.0.1", true, ""},
		{"127.1", true, ""},
		{"127.0.0.01", true, ""},
		{"1.2.3.04", true, ""},
		{"example.123", true, ""},
		{"::1::2", true, ""},
		{"example.com", false, ""},
		{"1.2.3.4.example", false, ""},
		{"0xdead.example", false, ""},
		{"localhost", false, ""},
		{"x0", false, ""},
	}
	for _, c := range cases {
		a, lit, err := ParseLiteral(c.host)
		switch {
		case lit != c.literal:
			t.Errorf("%q: literal=%v", c.host, lit)
		case c.literal && c.addr != "" && (err != nil || a.String() != c.addr):
			t.Errorf("%q: %v %v, want %s", c.host, a, err, c.addr)
		case c.literal && c.addr == "" && !errors.Is(err, ErrEgressDenied):
			t.Errorf("%q: err = %v, want refusal", c.host, err)
		case !c.literal && err != nil:
			t.Errorf("%q: err = %v", c.host, err)
		}
	}
}

// target is a loopback TCP listener that records the connections it accepts.
type target struct {
	ln       net.Listener
	accepted chan net.Conn
}

func newTarget(t *testing.T, network, addr string) *target {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, accepted: make(chan net.Conn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(tg.accepted)
		for c := range tg.accepted {
			c.Close()
		}
	})
	return tg
}

func (tg *target) port() string {
	_, p, _ := net.SplitHostPort(tg.ln.Addr().String())
	return p
}

func TestDialRefusesRebinding(t *testing.T) {
	up := testZone(t).Start(t)
	tg := newTarget(t, "tcp", "127.0.0.1:0")
	p := tg.port()
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}})
	for _, addr := range []string{
		"rebind.test:" + p, "private.test:" + p, "metadata.test:" + p, "mixed.test:" + p,
		"127.0.0.1:" + p, "[::ffff:127.0.0.1]:" + p, "[::1]:" + p, "2130706433:" + p,
		"127.1:" + p, "0x7f.0.0.1:" + p, "0177.0.0.1:" + p,
	} {
		for _, network := range []string{"tcp", "tcp4"} {
			c, err := r.DialContext(t.Context(), network, addr)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, ErrEgressDenied) {
				t.Errorf("Dial(%s, %s) err = %v, want ErrEgressDenied", network, addr, err)
			}
		}
	}
	// Nothing reached the listener: the first connection it accepts is this one.
	probe, err := net.Dial("tcp", tg.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	first := <-tg.accepted
	if first.RemoteAddr().String() != probe.LocalAddr().String() {
		t.Fatalf("the listener was reached by %v before the probe", first.RemoteAddr())
	}

	// The HTTP path of a forward proxy: a transport dialing through the resolver.
	tr := &http.Transport{DialContext: r.DialContext}
	defer tr.CloseIdleConnections()
	_, err = (&http.Client{Transport: tr}).Get("http://rebind.test:" + p + "/")
	if !errors.Is(err, ErrEgressDenied) {
		t.Fatalf("HTTP GET via rebinding name: %v", err)
	}
}

func TestDialAllowedRangeAndHappyEyeballs(t *testing.T) {
	up := testZone(t)
	tg := newTarget(t, "tcp", "127.0.0.1:0")
	// dual.test has ::1 (where nothing listens on this port) and 127.0.0.1.
	up.Add(t, "dual.test. 300 IN AAAA ::1", "dual.test. 300 IN A 127.0.0.1").Start(t)
	r := newTestResolver(t, Config{
		Upstreams: []string{up.Addr},
		Egress:    EgressConfig{Allow: []EgressAllow{mustAllow(t, "127.0.0.0/8"), mustAllow(t, "::1/128")}},
	})
	for _, host := range []string{"rebind.test", "dual.test", "127.0.0.1"} {
		c, err := r.DialContext(t.Context(), "tcp", net.JoinHostPort(host, tg.port()))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		s := <-tg.accepted
		fmt.Fprint(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%s: read %q %v", host, buf, err)
		}
		c.Close()
		s.Close()
	}
	// private.test (10.0.0.1) is outside the allowed ranges.
	if _, err := r.DialContext(t.Context(), "tcp", "private.test:80"); !errors.Is(err, ErrEgressDenied) {
		t.Fatalf("private.test: %v", err)
	}
	// tcp6 to a name with only IPv4 addresses: no suitable address.
	if _, err := r.DialContext(t.Context(), "tcp6", "rebind.test:80"); err == nil || errors.Is(err, ErrEgressDenied) {
		t.Fatalf("tcp6 rebind.test: %v", err)
	}
}

func TestInterleave(t *testing.T) {
	in := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:192.0.2.4"),
	}
	got := interleave(in)
	want := []netip.Addr{
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("interleave = %v", got)
	}
}

func TestCNAMECloakingCheck(t *testing.T) {
	up := testZone(t).Start(t)
	errTracker := errors.New("blocked: tracker")
	var checked []string
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}}, WithCheckName(func(name string) error {
		checked = append(checked, name)
		if name == "tracker.bad.test" {
			return errTracker
		}
		return nil
	}))
	if _, err := r.DialContext(t.Context(), "tcp", "cname.test:443"); !errors.Is(err, errTracker) {
		t.Fatalf("err = %v, want the hook's error", err)
	}
	if want := []string{"mid.test", "tracker.bad.test"}; !slices.Equal(checked, want) {
		t.Fatalf("checked %v, want %v", checked, want)
	}
}
