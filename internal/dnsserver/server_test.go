package dnsserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
	"github.com/portcullis/portcullis/rules"
)

// The resolver is what the engine passes: it must take the wire-form fast path.
var (
	_ Exchanger = (*resolver.Resolver)(nil)
	_ wireCache = (*resolver.Resolver)(nil)
)

var (
	student = netip.MustParseAddr("127.0.0.2")
	teacher = netip.MustParseAddr("127.0.0.1")
)

// testPolicy blocks ads.test (and below) and tracker.bad.test for everyone, and
// games.test for the student address.
func testPolicy() rules.Evaluator {
	return rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		switch {
		case f.Door != rules.DoorDNS:
			return rules.Verdict{Action: rules.ActionBlock, Rule: "wrong-door"}
		case f.Host == "ads.test" || strings.HasSuffix(f.Host, ".ads.test"):
			return rules.Verdict{Action: rules.ActionBlock, Rule: "ads", Category: "advertising"}
		case f.Host == "tracker.bad.test":
			return rules.Verdict{Action: rules.ActionBlock, Rule: "trackers", Category: "tracking"}
		case f.Host == "games.test" && f.Client == student:
			return rules.Verdict{Action: rules.ActionBlock, Rule: "students-games", Category: "games"}
		}
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
}

func testGroups(c netip.Addr) []string {
	if c == student {
		return []string{"students"}
	}
	return nil
}

func testUpstream(t testing.TB) *resolvertest.Upstream {
	up := resolvertest.New(3600, 60).Add(t,
		"a.test. 300 IN A 192.0.2.1",
		"games.test. 300 IN A 192.0.2.7",
		"ads.test. 300 IN A 192.0.2.8",
		"cname.test. 300 IN CNAME mid.test.",
		"mid.test. 300 IN CNAME tracker.bad.test.",
		"tracker.bad.test. 300 IN A 192.0.2.9",
		"www.youtube.com. 300 IN A 192.0.2.50",
		"www.google.de. 300 IN A 192.0.2.51",
		"forcesafesearch.google.com. 300 IN A 216.239.38.120",
		"restrict.youtube.com. 300 IN A 216.239.38.119",
		"restrict.youtube.com. 300 IN AAAA 2001:4860:4802:32::78",
	).NXDomain("nx.test", true)
	for i := range 40 { // 40 A records: more than 512 bytes
		up.Add(t, fmt.Sprintf("many.test. 300 IN A 192.0.2.%d", 100+i))
	}
	return up.Start(t)
}

// memLog collects access-log entries. The server logs after it has answered, so
// tests wait for the entries they expect.
type memLog struct {
	mu      sync.Mutex
	entries []accesslog.Entry
	added   chan struct{} // closed and replaced on every Log
}

func newMemLog() *memLog { return &memLog{added: make(chan struct{})} }

func (l *memLog) Log(e *accesslog.Entry) {
	l.mu.Lock()
	l.entries = append(l.entries, *e)
	close(l.added)
	l.added = make(chan struct{})
	l.mu.Unlock()
}

// wait returns the entries for url once there are n of them (failing after 5 s).
func (l *memLog) wait(t *testing.T, url string, n int) []accesslog.Entry {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		var out []accesslog.Entry
		for _, e := range l.entries {
			if e.URL == url {
				out = append(out, e)
			}
		}
		added := l.added
		l.mu.Unlock()
		if len(out) >= n {
			return out
		}
		select {
		case <-added:
		case <-timeout:
			t.Fatalf("%d log entries for %s, want %d", len(out), url, n)
		}
	}
}

// startServer serves opts on a loopback UDP and TCP socket (same port) until the
// test ends, and returns the address.
func startServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	return startServerWith(t, opts, func(pc net.PacketConn) net.PacketConn { return pc })
}

// miekgOnly hides the *net.UDPConn so that Serve hands the socket to miekg/dns.
type miekgOnly struct{ net.PacketConn }

// startServerWith is startServer with the UDP socket passed through wrap.
func startServerWith(t testing.TB, opts Options, wrap func(net.PacketConn) net.PacketConn) (*Server, string) {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if ln == nil {
		t.Fatal("no port free for UDP and TCP")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, wrap(pc), ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, pc.LocalAddr().String()
}

func newResolver(t testing.TB, up *resolvertest.Upstream) *resolver.Resolver {
	r, err := resolver.New(resolver.Config{Upstreams: []string{up.Addr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// ask sends one query from the given loopback address over network.
func ask(t testing.TB, server, network string, from netip.Addr, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	return exchange(t, server, network, from, m)
}

func exchange(t testing.TB, server, network string, from netip.Addr, m *dns.Msg) *dns.Msg {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	if network == "udp" {
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
	} else {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
	}
	c := &dns.Client{Net: network, Dialer: d, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s: %v", network, m.Question[0].Name, err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply id %d, query id %d", r.Id, m.Id)
	}
	return r
}

func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.CNAME:
			out = append(out, "CNAME "+v.Target)
		}
	}
	return out
}

func ede(m *dns.Msg) *dns.EDNS0_EDE {
	if o := m.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if v, ok := e.(*dns.EDNS0_EDE); ok {
				return v
			}
		}
	}
	return nil
}

// TestServeStoppedBeforeStarting: a Serve whose context ends before its TCP
// server has started returns (it used to leave that server accepting forever
// once it started, and Serve waiting for it: seen once in CI).
func TestServeStoppedBeforeStarting(t *testing.T) {
	res := newResolver(t, testUpstream(t))
	for i := range 500 {
		srv, err := New(Options{Config: &Config{}, Resolver: res})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, pc, ln) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: Serve: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d: Serve did not return after its context ended", i)
		}
	}
}

func TestBlockedNamesPerGroup(t *testing.T) {
	up := testUpstream(t)
	log := newMemLog()
	_, addr := startServer(t, Options{
		Config: &Config{}, Policy: testPolicy(), Groups: testGroups, Resolver: newResolver(t, up), Log: log,
	})
	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, addr, network, teacher, "games.test", dns.TypeA, true)
		if r.Rcode != dns.RcodeSuccess || !slices.Equal(answers(r), []string{"192.0.2.7"}) {
			t.Fatalf("teacher games.test: %v", r)
		}
		r = ask(t, addr, network, student, "Games.Test", dns.TypeA, true)
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Fatalf("student games.test: %v", r)
		}
		if e := ede(r); e == nil || e.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(e.ExtraText, "students-games") {
			t.Fatalf("student games.test EDE: %v", e)
		}
		for _, from := range []netip.Addr{teacher, student} {
			if r := ask(t, addr, network, from, "x.ads.test", dns.TypeAAAA, false); r.Rcode != dns.RcodeNameError || r.IsEdns0() != nil {
				t.Fatalf("ads.test from %v: %v", from, r)
			}
		}
	}
	if up.Count("ads.test", dns.TypeA, "")+up.Count("x.ads.test", dns.TypeAAAA, "") != 0 {
		t.Fatal("a blocked name was forwarded")
	}
	for _, e := range log.wait(t, "games.test", 4) {
		blocked := e.Action == "block" && e.Rule == "students-games" && e.Category == "games" && e.Status == dns.RcodeNameError
		allowed := e.Action == "allow" && e.Status == dns.RcodeSuccess && e.Upstream == "resolver"
		if e.Door != "dns" || e.Method != "A" || (e.Client == student && !blocked) || (e.Client == teacher && !allowed) {
			t.Fatalf("log entry %+v", e)
		}
	}
}

func TestBlockAnswerAddress(t *testing.T) {
	up := testUpstream(t)
	_, addr := startServer(t, Options{
		Config: &Config{BlockAnswer: BlockAddress, BlockAddressV4: netip.MustParseAddr("192.0.2.66"), TTL: 42 * time.Second},
		Policy: testPolicy(), Resolver: newResolver(t, up),
	})
	r := ask(t, addr, "udp", teacher, "ads.test", dns.TypeA, false)
	if r.Rcode != dns.RcodeSuccess || !slices.Equal(answers(r), []string{"192.0.2.66"}) || r.Answer[0].Header().Ttl != 42 {
		t.Fatalf("A: %v", r)
	}
	r = ask(t, addr, "udp", teacher, "ads.test", dns.TypeAAAA, false)
	if !slices.Equal(answers(r), []string{"::"}) {
		t.Fatalf("AAAA: %v", r)
	}
	r = ask(t, addr, "udp", teacher, "ads.test", dns.TypeMX, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("MX: %v", r)
	}
}

func TestSafeSearchPerGroup(t *testing.T) {
	up := testUpstream(t)
	cfg := &Config{
		SafeSearch: filter.SafeSearch{Google: true},
		Groups:     map[string]GroupConfig{"students": {SafeSearch: GroupSafeSearch{YouTube: filter.YouTubeStrict}}},
		TTL:        90 * time.Second,
	}
	_, addr := startServer(t, Options{Config: cfg, Policy: testPolicy(), Groups: testGroups, Resolver: newResolver(t, up)})
	cases := []struct {
		from  netip.Addr
		name  string
		qtype uint16
		want  []string
	}{
		{teacher, "www.google.de", dns.TypeA, []string{"CNAME forcesafesearch.google.com.", "216.239.38.120"}},
		{teacher, "WWW.Google.co.uk", dns.TypeA, []string{"CNAME forcesafesearch.google.com.", "216.239.38.120"}},
		{teacher, "www.youtube.com", dns.TypeA, []string{"192.0.2.50"}},
		{student, "www.youtube.com", dns.TypeA, []string{"CNAME restrict.youtube.com.", "216.239.38.119"}},
		{student, "m.youtube.com", dns.TypeAAAA, []string{"CNAME restrict.youtube.com.", "2001:4860:4802:32::78"}},
		{student, "www.youtube.com", dns.TypeCNAME, []string{"CNAME restrict.youtube.com."}},
		{student, "google.com", dns.TypeA, []string{"CNAME forcesafesearch.google.com.", "216.239.38.120"}},
		{student, "a.test", dns.TypeA, []string{"192.0.2.1"}},
	}
	for _, c := range cases {
		r := ask(t, addr, "udp", c.from, c.name, c.qtype, false)
		if got := answers(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, c.want) {
			t.Errorf("%v %s %s: %v, want %v", c.from, c.name, dns.TypeToString[c.qtype], got, c.want)
		}
		if strings.HasPrefix(c.want[0], "CNAME") && r.Answer[0].Header().Ttl != 90 {
			t.Errorf("%s: CNAME TTL %d", c.name, r.Answer[0].Header().Ttl)
		}
	}
	if up.Count("www.google.de", dns.TypeA, "") != 0 {
		t.Fatal("a SafeSearch name was forwarded")
	}
}

func TestForwardingCacheAndNegativeCache(t *testing.T) {
	up := testUpstream(t)
	log := newMemLog()
	_, addr := startServer(t, Options{Config: &Config{}, Resolver: newResolver(t, up), Log: log})
	for i, network := range []string{"udp", "udp", "tcp", "udp"} {
		m := new(dns.Msg)
		m.SetQuestion("A.Test.", dns.TypeA) // the reply keeps the asker's case (0x20)
		m.Id = uint16(1000 + i)
		m.RecursionDesired = true
		r := exchange(t, addr, network, teacher, m)
		if !slices.Equal(answers(r), []string{"192.0.2.1"}) || !r.RecursionAvailable || !r.RecursionDesired ||
			r.Authoritative || r.Question[0].Name != "A.Test." || r.IsEdns0() != nil {
			t.Fatalf("%s a.test: %v", network, r)
		}
		r = ask(t, addr, network, teacher, "nx.test", dns.TypeA, true)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("%s nx.test: %v", network, r)
		}
		if o := r.IsEdns0(); o == nil || o.UDPSize() != ednsSize {
			t.Fatalf("EDNS not answered: %v", r)
		}
	}
	if n := up.Count("a.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("upstream saw %d queries for a.test, want 1 (cache)", n)
	}
	hits := 0
	for _, e := range log.wait(t, "a.test", 4) {
		if e.Cache == "hit" {
			hits++
		}
	}
	if hits != 3 {
		t.Fatalf("%d cache hits logged, want 3", hits)
	}
	if n := up.Count("nx.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("upstream saw %d queries for nx.test, want 1 (negative cache)", n)
	}
}

func TestCNAMECloakingBlocked(t *testing.T) {
	up := testUpstream(t)
	log := newMemLog()
	_, addr := startServer(t, Options{Config: &Config{}, Policy: testPolicy(), Resolver: newResolver(t, up), Log: log})
	// The second query finds the chain in the cache: it is checked there too.
	for _, edns := range []bool{true, false} {
		r := ask(t, addr, "udp", teacher, "cname.test", dns.TypeA, edns)
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Fatalf("cloaked tracker answered: %v", r)
		}
	}
	for _, e := range log.wait(t, "cname.test", 2) {
		if e.Rule != "trackers" || e.Action != "block" {
			t.Fatalf("log %+v", e)
		}
	}
	if n := up.Count("cname.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("upstream asked %d times", n)
	}
}

func TestNoResolverRefusesAndBadQueries(t *testing.T) {
	_, addr := startServer(t, Options{Config: &Config{}})
	if r := ask(t, addr, "udp", teacher, "a.test", dns.TypeA, false); r.Rcode != dns.RcodeRefused {
		t.Fatalf("no resolver: %v", r)
	}
	m := new(dns.Msg)
	m.SetQuestion("a.test.", dns.TypeA)
	m.Opcode = dns.OpcodeNotify
	if r := exchange(t, addr, "udp", teacher, m); r.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("notify: %v", r)
	}
	m = new(dns.Msg)
	m.SetQuestion("a.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	if r := exchange(t, addr, "udp", teacher, m); r.Rcode != dns.RcodeBadVers {
		t.Fatalf("EDNS version 1: rcode %s", dns.RcodeToString[r.Rcode])
	}
}

func TestUpdateSwapsConfiguration(t *testing.T) {
	up := testUpstream(t)
	res := newResolver(t, up)
	srv, addr := startServer(t, Options{Config: &Config{}, Resolver: res})
	if r := ask(t, addr, "udp", teacher, "ads.test", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("before: %v", r)
	}
	if err := srv.Update(Options{Config: &Config{}, Resolver: res, Policy: testPolicy()}); err != nil {
		t.Fatal(err)
	}
	if r := ask(t, addr, "udp", teacher, "ads.test", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Fatalf("after: %v", r)
	}
	if err := srv.Update(Options{Config: &Config{BlockAnswer: "drop"}}); err == nil {
		t.Fatal("invalid config accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	c := &Config{
		Listen:               []string{"127.0.0.1"},
		BlockAnswer:          "drop",
		BlockAddressV4:       netip.MustParseAddr("::1"),
		SafeSearch:           filter.SafeSearch{YouTube: "lax"},
		Groups:               map[string]GroupConfig{"kids": {SafeSearch: GroupSafeSearch{YouTube: "on"}}},
		MaxInFlight:          -1,
		MaxInFlightPerClient: -1,
		GSLB: GSLBConfig{
			Zone:       "example.test.",
			Names:      map[string]NameConfig{"www": {WhenAllDown: "panic", Sites: []SiteConfig{{Name: "eu", Weight: -1}}}},
			Regions:    map[string]string{"10.0.0.0/33": "eu"},
			Preference: map[string][]string{"eu": {"mars"}},
		},
	}
	var paths []string
	for _, e := range c.Validate() {
		paths = append(paths, e.Path)
	}
	want := []string{"listen[0]", "block_answer", "block_address_v4", "safesearch.youtube", "groups.kids.safesearch.youtube",
		"max_inflight", "max_inflight_per_client",
		"gslb.names.www.when_all_down", "gslb.names.www.sites[0].addresses", "gslb.names.www.sites[0].weight",
		"gslb.regions.10.0.0.0/33", "gslb.preference.eu[0]"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths\n%v\nwant\n%v", paths, want)
	}
	if errs := (&Config{}).Validate(); errs != nil {
		t.Fatal(errs)
	}
}

func TestTruncationForUDPClients(t *testing.T) {
	up := testUpstream(t)
	_, addr := startServer(t, Options{Config: &Config{}, Resolver: newResolver(t, up)})
	for range 2 { // a miss, then a cache hit
		if r := ask(t, addr, "udp", teacher, "many.test", dns.TypeA, false); !r.Truncated || len(r.Answer) >= 40 {
			t.Fatalf("512-byte client: TC=%v, %d answers", r.Truncated, len(r.Answer))
		}
		if r := ask(t, addr, "udp", teacher, "many.test", dns.TypeA, true); r.Truncated || len(r.Answer) != 40 {
			t.Fatalf("EDNS client: TC=%v, %d answers", r.Truncated, len(r.Answer))
		}
		if r := ask(t, addr, "tcp", teacher, "many.test", dns.TypeA, false); r.Truncated || len(r.Answer) != 40 {
			t.Fatalf("TCP client: TC=%v, %d answers", r.Truncated, len(r.Answer))
		}
	}
}

// TestMiekgUDPPath runs the queries the fast UDP loop would answer through the
// miekg/dns server used for wildcard sockets.
func TestMiekgUDPPath(t *testing.T) {
	up := testUpstream(t)
	_, addr := startServerWith(t, Options{Config: &Config{}, Policy: testPolicy(), Resolver: newResolver(t, up)},
		func(pc net.PacketConn) net.PacketConn { return miekgOnly{pc} })
	for range 3 {
		if r := ask(t, addr, "udp", teacher, "A.test", dns.TypeA, true); !slices.Equal(answers(r), []string{"192.0.2.1"}) || r.Question[0].Name != "A.test." {
			t.Fatalf("a.test: %v", r)
		}
		if r := ask(t, addr, "udp", teacher, "ads.test", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
			t.Fatalf("ads.test: %v", r)
		}
	}
	if n := up.Count("a.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("upstream asked %d times", n)
	}
}

func TestFormErrForGarbage(t *testing.T) {
	_, addr := startServer(t, Options{Config: &Config{}})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A header claiming one question, and no question.
	if _, err := c.Write([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a'}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil || m.Id != 0x1234 || !m.Response || m.Rcode != dns.RcodeFormatError {
		t.Fatalf("reply %v %v", m, err)
	}
}

func TestAllowClients(t *testing.T) {
	up := testUpstream(t)
	cfg := gslbConfig()
	cfg.AllowClients = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	log := newMemLog()
	_, addr := startServer(t, Options{Config: cfg, Resolver: newResolver(t, up), Log: log})
	for range 2 { // the second time the answer is in the cache
		if r := ask(t, addr, "udp", teacher, "a.test", dns.TypeA, false); len(r.Answer) != 1 {
			t.Fatalf("allowed client: %v", r)
		}
		if r := ask(t, addr, "udp", student, "a.test", dns.TypeA, false); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Fatalf("other client: %v", r)
		}
	}
	// The GSLB zone is answered for everyone.
	if r := ask(t, addr, "udp", student, "www.example.test", dns.TypeA, false); len(r.Answer) != 1 {
		t.Fatalf("GSLB for another client: %v", r)
	}
	for _, e := range log.wait(t, "a.test", 4) {
		if e.Client == student && (e.Action != "block" || e.Rule != "allow_clients") {
			t.Fatalf("log %+v", e)
		}
	}
}
