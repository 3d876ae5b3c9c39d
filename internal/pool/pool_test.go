package pool

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin is a loopback member that counts the requests it serves.
type origin struct {
	srv     *httptest.Server
	hits    atomic.Int64
	healthy atomic.Bool
}

func newOrigin(t *testing.T, name string) *origin {
	t.Helper()
	o := &origin{}
	o.healthy.Store(true)
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if !o.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		o.hits.Add(1)
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			if len(b) > 0 {
				w.Header().Set("X-Body", string(b))
			}
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func origins(t *testing.T, n int) []*origin {
	out := make([]*origin, n)
	for i := range out {
		out[i] = newOrigin(t, fmt.Sprint("m", i))
	}
	return out
}

func membersOf(orgs []*origin, weights ...int) []MemberConfig {
	out := make([]MemberConfig, len(orgs))
	for i, o := range orgs {
		out[i] = MemberConfig{URL: o.srv.URL}
		if i < len(weights) {
			out[i].Weight = weights[i]
		}
	}
	return out
}

// deadAddr returns a loopback URL nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := New("test", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// get sends one GET through the pool's transport with key as the selection key.
func get(p *Pool, key string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(WithKey(context.Background(), key), http.MethodGet, "http://site.test/x", nil)
	resp, err := p.Transport().RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func hits(orgs []*origin) []int64 {
	out := make([]int64, len(orgs))
	for i, o := range orgs {
		out[i] = o.hits.Load()
	}
	return out
}

func within(got, lo, hi int64) bool { return got >= lo && got <= hi }

// policyCase is one policy's expected behaviour, run through the same harness.
type policyCase struct {
	policy  string
	weights []int
	// key for request i; nil sends no key.
	key func(i int) string
	// check judges the per-member counts of 600 requests over three members.
	check func(counts []int64) error
}

var policyCases = []policyCase{
	{policy: PolicyRoundRobin, check: exact(200, 200, 200)},
	{policy: PolicyWeightedRoundRobin, weights: []int{1, 2, 3}, check: exact(100, 200, 300)},
	{policy: PolicyLeastConn, check: band(190, 210)}, // sequential: all idle, ties rotate
	{policy: PolicyP2C, check: band(140, 260)},       // random: 200 ± 5σ-ish
	{policy: PolicyIPHash, key: func(i int) string { return fmt.Sprintf("10.0.%d.%d", i/250, i%250) }, check: band(140, 260)},
	{policy: PolicyHash, key: func(i int) string { return fmt.Sprint("user-", i) }, check: band(140, 260)},
	{policy: PolicyFirst, check: exact(600, 0, 0)},
}

func exact(want ...int64) func([]int64) error {
	return func(got []int64) error {
		for i := range want {
			if got[i] != want[i] {
				return fmt.Errorf("counts %v, want %v", got, want)
			}
		}
		return nil
	}
}

func band(lo, hi int64) func([]int64) error {
	return func(got []int64) error {
		for _, g := range got {
			if !within(g, lo, hi) {
				return fmt.Errorf("counts %v, want each in [%d,%d]", got, lo, hi)
			}
		}
		return nil
	}
}

func TestPolicies(t *testing.T) {
	for _, pc := range policyCases {
		t.Run(pc.policy, func(t *testing.T) {
			t.Run("distribution", func(t *testing.T) { testDistribution(t, pc) })
			t.Run("skips unavailable", func(t *testing.T) { testSkipsUnavailable(t, pc) })
			t.Run("none available", func(t *testing.T) { testNoneAvailable(t, pc) })
			t.Run("loaded member avoided", func(t *testing.T) { testLoaded(t, pc) })
		})
	}
}

func policyConfig(pc policyCase, ms []MemberConfig) Config {
	cfg := Config{Members: ms, Policy: pc.policy}
	if pc.policy == PolicyHash {
		cfg.HashKey = "header:X-User"
	}
	return cfg
}

func keyOf(pc policyCase, i int) string {
	if pc.key == nil {
		return ""
	}
	return pc.key(i)
}

func testDistribution(t *testing.T, pc policyCase) {
	orgs := origins(t, 3)
	p := newPool(t, policyConfig(pc, membersOf(orgs, pc.weights...)))
	for i := range 600 {
		if _, err := get(p, keyOf(pc, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.check(hits(orgs)); err != nil {
		t.Error(err)
	}
	// A hashing policy sends a key to the same member every time.
	if pc.key != nil {
		before := hits(orgs)
		for range 50 {
			if _, err := get(p, pc.key(7)); err != nil {
				t.Fatal(err)
			}
		}
		moved := 0
		for i, h := range hits(orgs) {
			if h != before[i] {
				moved++
			}
		}
		if moved != 1 {
			t.Errorf("one key reached %d members, want 1", moved)
		}
	}
}

func testSkipsUnavailable(t *testing.T, pc policyCase) {
	orgs := origins(t, 3)
	p := newPool(t, policyConfig(pc, membersOf(orgs, pc.weights...)))
	p.Members()[0].st.healthy.Store(false)
	for i := range 300 {
		if _, err := get(p, keyOf(pc, i)); err != nil {
			t.Fatal(err)
		}
	}
	got := hits(orgs)
	if got[0] != 0 || got[1]+got[2] != 300 {
		t.Errorf("counts %v: the down member was sent requests", got)
	}
	if pc.policy == PolicyFirst && got[1] != 300 {
		t.Errorf("first: counts %v, want all on the second member", got)
	}
}

func testNoneAvailable(t *testing.T, pc policyCase) {
	orgs := origins(t, 3)
	p := newPool(t, policyConfig(pc, membersOf(orgs, pc.weights...)))
	for _, m := range p.Members() {
		m.st.healthy.Store(false)
	}
	if p.Healthy() {
		t.Error("Healthy() with every member down")
	}
	if _, err := get(p, keyOf(pc, 1)); !errors.Is(err, ErrNoHealthyMember) {
		t.Errorf("err = %v, want ErrNoHealthyMember", err)
	}
}

// testLoaded: the load-aware policies never pick a member with requests in
// flight while idle ones exist.
func testLoaded(t *testing.T, pc policyCase) {
	if pc.policy != PolicyLeastConn && pc.policy != PolicyP2C {
		t.Skip("policy is not load-aware")
	}
	orgs := origins(t, 3)
	p := newPool(t, policyConfig(pc, membersOf(orgs)))
	busy := p.Members()[1]
	busy.st.inFlight.Add(3)
	defer busy.st.inFlight.Add(-3)
	for range 200 {
		m, err := p.Select("")
		if err != nil {
			t.Fatal(err)
		}
		if m == busy {
			t.Fatal("selected the loaded member")
		}
	}
}

func TestHashMovesOneNth(t *testing.T) {
	const n, keys = 5, 5000
	ms := make([]MemberConfig, n)
	for i := range ms {
		ms[i] = MemberConfig{URL: fmt.Sprintf("http://10.0.0.%d:80", i+1)}
	}
	p := newPool(t, Config{Members: ms, Policy: PolicyIPHash})
	before := make([]*memberState, keys)
	for k := range keys {
		m, _ := p.Select(fmt.Sprint("client-", k))
		before[k] = m.st
	}
	gone := p.Members()[2]
	gone.st.healthy.Store(false)
	moved := 0
	for k := range keys {
		m, _ := p.Select(fmt.Sprint("client-", k))
		switch {
		case m.st != before[k] && before[k] != gone.st:
			t.Fatalf("key %d moved between two members that both stayed", k)
		case m.st != before[k]:
			moved++
		}
	}
	// Expect ≈ keys/n = 1000 to move (only the leaving member's keys).
	if !within(int64(moved), 800, 1200) {
		t.Errorf("%d of %d keys moved, want ≈%d", moved, keys, keys/n)
	}
}

func TestActiveHealthRiseFall(t *testing.T) {
	orgs := origins(t, 2)
	cfg := Config{Members: membersOf(orgs), Health: HealthConfig{Path: "/health", Rise: 2, Fall: 3}}
	p := newPool(t, cfg)
	ctx := context.Background()
	m := p.Members()[0]
	orgs[0].healthy.Store(false)
	for i := 1; i <= 3; i++ {
		p.CheckNow(ctx)
		if want := i < 3; m.Available() != want {
			t.Fatalf("after %d failed checks Available = %v, want %v", i, m.Available(), want)
		}
	}
	if st := p.Status()[0]; st.Healthy || st.LastError == "" || st.LastCheck.IsZero() {
		t.Errorf("status %+v, want unhealthy with last error and check time", st)
	}
	for range 20 { // no request reaches the down member
		if _, err := get(p, ""); err != nil {
			t.Fatal(err)
		}
	}
	if h := orgs[0].hits.Load(); h != 0 {
		t.Errorf("down member served %d requests", h)
	}
	orgs[0].healthy.Store(true)
	p.CheckNow(ctx)
	if m.Available() {
		t.Fatal("up after one pass, want rise=2")
	}
	p.CheckNow(ctx)
	if !m.Available() {
		t.Fatal("still down after two passes")
	}
}

func TestRunMarksDownAndUp(t *testing.T) {
	orgs := origins(t, 2)
	cfg := Config{Members: membersOf(orgs), Health: HealthConfig{Path: "/health", Interval: 10 * time.Millisecond, Rise: 1, Fall: 1}}
	p := newPool(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	orgs[1].healthy.Store(false)
	waitFor("member down", func() bool { return !p.Members()[1].Available() })
	orgs[1].healthy.Store(true)
	waitFor("member up", func() bool { return p.Members()[1].Available() })
}

// fakeClock is a settable time source for cool-downs and the budget window.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestPassiveEjectionAndCooldown(t *testing.T) {
	orgs := origins(t, 1)
	dead := deadAddr(t)
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	cfg := Config{
		Members: []MemberConfig{{URL: dead}, {URL: orgs[0].srv.URL}},
		Policy:  PolicyFirst,
		Passive: PassiveConfig{MaxFails: 2, Cooldown: 30 * time.Second},
		Retries: RetryConfig{Max: -1},
	}
	p := newPool(t, cfg)
	p.now = clk.Now
	for i := range 2 {
		if _, err := get(p, ""); err == nil {
			t.Fatalf("request %d to the dead first member succeeded without retries", i)
		}
	}
	if p.Members()[0].Available() || !p.Status()[0].Ejected {
		t.Fatal("member not ejected after max_fails failures")
	}
	if _, err := get(p, ""); err != nil {
		t.Fatalf("with the first member ejected: %v", err)
	}
	clk.Add(29 * time.Second)
	if p.Members()[0].Available() {
		t.Fatal("back before the cool-down ended")
	}
	clk.Add(2 * time.Second)
	if !p.Members()[0].Available() {
		t.Fatal("not back after the cool-down")
	}
}

func TestRetryOnDeadMember(t *testing.T) {
	orgs := origins(t, 2)
	// Passive ejection is off, so a third of all requests need a retry: allow it.
	cfg := Config{Members: append([]MemberConfig{{URL: deadAddr(t)}}, membersOf(orgs)...), Passive: PassiveConfig{MaxFails: -1}, Retries: RetryConfig{BudgetRatio: 0.5}}
	p := newPool(t, cfg)
	for range 90 {
		if _, err := get(p, ""); err != nil {
			t.Fatalf("GET failed despite retries: %v", err)
		}
	}
	// A POST is retried only because its dial failed; its body arrives intact.
	for range 6 {
		req, _ := http.NewRequest(http.MethodPost, "http://site.test/p", io.NopCloser(strings.NewReader("payload")))
		resp, err := p.Transport().RoundTrip(req)
		if err != nil {
			t.Fatalf("POST failed: %v", err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Body"); got != "payload" {
			t.Fatalf("member got body %q", got)
		}
	}
}

// closer is a member that reads each request and then drops the connection
// without answering, counting the requests.
func closer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func TestNoRetryForPostAfterSend(t *testing.T) {
	u1, n1 := closer(t)
	u2, n2 := closer(t)
	p := newPool(t, Config{Members: []MemberConfig{{URL: u1}, {URL: u2}}, Passive: PassiveConfig{MaxFails: -1}})
	req, _ := http.NewRequest(http.MethodPost, "http://site.test/p", io.NopCloser(strings.NewReader("x")))
	if _, err := p.Transport().RoundTrip(req); err == nil {
		t.Fatal("POST to a failing member succeeded")
	}
	if got := n1.Load() + n2.Load(); got != 1 {
		t.Errorf("POST sent %d times, want 1 (not idempotent)", got)
	}
	if _, err := get(p, ""); err == nil {
		t.Fatal("GET to failing members succeeded")
	}
	if got := n1.Load() + n2.Load(); got != 3 {
		t.Errorf("after one GET: %d attempts in all, want 3 (1 POST + GET and one retry)", got)
	}
}

func TestRetriesStopAtBudget(t *testing.T) {
	u1, n1 := closer(t)
	u2, n2 := closer(t)
	u3, n3 := closer(t)
	clk := &fakeClock{t: time.Unix(2_000_000, 0)}
	p := newPool(t, Config{
		Members: []MemberConfig{{URL: u1}, {URL: u2}, {URL: u3}},
		Passive: PassiveConfig{MaxFails: -1},
		Retries: RetryConfig{Max: 2, BudgetRatio: 0.1, MinPerSecond: 1},
	})
	p.now = clk.Now
	const requests = 100
	for range requests {
		if _, err := get(p, ""); err == nil {
			t.Fatal("GET to failing members succeeded")
		}
	}
	attempts := n1.Load() + n2.Load() + n3.Load()
	retries := attempts - requests
	// Without a budget: 2 retries each = 200. With it: 1 free + 0.1 per request.
	if retries < 5 || retries > 1+requests/10 {
		t.Errorf("%d retries for %d failing requests, want between 5 and %d", retries, requests, 1+requests/10)
	}
}

func TestUpdateKeepsHealth(t *testing.T) {
	orgs := origins(t, 3)
	p := newPool(t, Config{Members: membersOf(orgs[:2])})
	p.Members()[1].st.healthy.Store(false)
	if err := p.Update(Config{Members: membersOf(orgs), Policy: PolicyLeastConn}); err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if len(st) != 3 || !st[0].Healthy || st[1].Healthy || !st[2].Healthy {
		t.Errorf("status after update %+v: want the down member kept down, the new one up", st)
	}
	if p.Policy() != PolicyLeastConn {
		t.Errorf("policy %q after update", p.Policy())
	}
	if err := p.Update(Config{}); err == nil {
		t.Error("update with no members accepted")
	}
	if len(p.Members()) != 3 {
		t.Error("a failed update changed the pool")
	}
}

// TestPrepareCommitDiscard: a prepared configuration changes nothing the pool
// does until Commit; Discard leaves the pool as it was; Commit applies it like
// Update, members that stay keeping their health.
func TestPrepareCommitDiscard(t *testing.T) {
	orgs := origins(t, 2)
	p := newPool(t, Config{Members: membersOf(orgs[:1])})
	send := func(n int) {
		t.Helper()
		for range n {
			if _, err := get(p, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := p.Prepare(Config{}); err == nil {
		t.Fatal("Prepare accepted a pool with no members")
	}
	pend, err := p.Prepare(Config{Members: membersOf(orgs[1:])})
	if err != nil {
		t.Fatal(err)
	}
	send(4)
	if h := hits(orgs); h[0] != 4 || h[1] != 0 || len(p.Status()) != 1 {
		t.Fatalf("before Commit: hits %v, status %+v; want only the current member", h, p.Status())
	}
	pend.Discard()
	pend.Commit() // no effect after Discard
	send(2)
	if h := hits(orgs); h[0] != 6 || h[1] != 0 {
		t.Fatalf("after Discard: hits %v, want [6 0]", h)
	}

	p.Members()[0].st.healthy.Store(false) // down by active checks
	pend, err = p.Prepare(Config{Members: membersOf(orgs)})
	if err != nil {
		t.Fatal(err)
	}
	pend.Commit()
	pend.Discard() // no effect after Commit
	st := p.Status()
	if len(st) != 2 || st[0].Healthy || !st[1].Healthy {
		t.Fatalf("after Commit: %+v; want the kept member still down, the new one up", st)
	}
	send(3)
	if h := hits(orgs); h[0] != 6 || h[1] != 3 {
		t.Fatalf("after Commit: hits %v, want [6 3]", h)
	}
}

func TestValidate(t *testing.T) {
	cfg := Config{
		Members: []MemberConfig{{URL: "ftp://x"}, {URL: "http://a:1", Weight: -1}, {URL: "http://a:1"}},
		Policy:  "fastest", HashKey: "query:x",
		Health:  HealthConfig{Path: "health", ExpectStatus: 99},
		Retries: RetryConfig{BudgetRatio: 2},
	}
	want := []string{"members[0].url", "members[1].weight", "members[2].url", "policy", "hash_key", "health.path", "health.expect_status", "retries.budget_ratio"}
	errs := cfg.Validate()
	got := map[string]bool{}
	for _, e := range errs {
		got[e.Path] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no error at %s; got %v", w, errs)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
}

func TestInfoReportsMember(t *testing.T) {
	orgs := origins(t, 1)
	p := newPool(t, Config{Members: append([]MemberConfig{{URL: deadAddr(t)}}, membersOf(orgs)...), Policy: PolicyFirst})
	info := &Info{}
	req, _ := http.NewRequestWithContext(WithInfo(context.Background(), info), http.MethodGet, "http://site.test/", nil)
	resp, err := p.Transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if info.Member != orgs[0].srv.URL || info.Attempts != 2 {
		t.Errorf("info %+v, want member %s after 2 attempts", info, orgs[0].srv.URL)
	}
	if n := p.Members()[1].InFlight(); n != 0 {
		t.Errorf("in flight %d after the body was closed", n)
	}
}

func TestChecksLiftEjection(t *testing.T) {
	orgs := origins(t, 2) // a second member: the last available one is never ejected
	clk := &fakeClock{t: time.Unix(3_000_000, 0)}
	p := newPool(t, Config{Members: membersOf(orgs), Health: HealthConfig{Path: "/health", Rise: 2}, Passive: PassiveConfig{MaxFails: 1, Cooldown: time.Hour}})
	p.now = clk.Now
	m := p.Members()[0]
	p.recordFailure(p.state.Load(), m, io.ErrUnexpectedEOF)
	if m.Available() {
		t.Fatal("not ejected")
	}
	p.CheckNow(context.Background())
	if m.Available() {
		t.Fatal("ejection lifted after one passing check, want rise=2")
	}
	p.CheckNow(context.Background())
	if !m.Available() {
		t.Fatal("ejection not lifted after rise passing checks")
	}
}

func TestHTTPSMemberSpeaksHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "HTTP/%d", r.ProtoMajor)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := t.TempDir() + "/ca.pem"
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPool(t, Config{Members: []MemberConfig{{URL: srv.URL}}, TLS: TLSConfig{CAFile: caFile}})
	req, _ := http.NewRequest(http.MethodGet, "http://site.test/", nil)
	resp, err := p.Transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2" {
		t.Errorf("member saw %s, want HTTP/2 over TLS verified with ca_file", b)
	}
	// Without the CA the member's certificate is refused.
	p2 := newPool(t, Config{Members: []MemberConfig{{URL: srv.URL}}, Retries: RetryConfig{Max: -1}})
	if _, err := p2.Transport().RoundTrip(req); err == nil {
		t.Error("unverifiable member certificate accepted")
	}
}

func TestUnhealthyStatusEjects(t *testing.T) {
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(sick.Close)
	orgs := origins(t, 1)
	p := newPool(t, Config{
		Members: []MemberConfig{{URL: sick.URL}, {URL: orgs[0].srv.URL}},
		Policy:  PolicyFirst,
		Passive: PassiveConfig{MaxFails: 2, UnhealthyStatus: []int{503}},
	})
	for i := range 2 {
		resp, err := get(p, "")
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %v %v, want the member's 503 passed on", i, resp, err)
		}
	}
	if p.Members()[0].Available() {
		t.Fatal("member answering 503 not ejected after max_fails")
	}
	if resp, err := get(p, ""); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after ejection: %v %v", resp, err)
	}
}

// failingBody yields some bytes, then an error, as a client body cut short does.
type failingBody struct{ sent bool }

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "partial"), nil
	}
	return 0, fmt.Errorf("client body too large")
}
func (b *failingBody) Close() error { return nil }

func TestClientBodyErrorNotMemberFault(t *testing.T) {
	orgs := origins(t, 2)
	p := newPool(t, Config{Members: membersOf(orgs), Passive: PassiveConfig{MaxFails: 1}})
	for range 4 {
		req, _ := http.NewRequest(http.MethodPut, "http://site.test/u", &failingBody{})
		req.ContentLength = 100
		if _, err := p.Transport().RoundTrip(req); err == nil {
			t.Fatal("request with a failing body succeeded")
		}
	}
	for i, st := range p.Status() {
		if !st.Healthy || st.Failures != 0 {
			t.Errorf("member %d after client body errors: %+v", i, st)
		}
	}
}

// TestLastMemberNeverEjected: a pool's only available member keeps receiving
// requests after max_fails bad answers (nginx and HAProxy keep sending to a
// single server); ejecting it would answer 503 for the whole cool-down.
func TestLastMemberNeverEjected(t *testing.T) {
	var hits atomic.Int64
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(sick.Close)
	for _, tc := range []struct {
		name    string
		members []MemberConfig
	}{
		{"one member", []MemberConfig{{URL: sick.URL}}},
		{"other member down", []MemberConfig{{URL: sick.URL}, {URL: deadAddr(t)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			p := newPool(t, Config{
				Members: tc.members,
				Policy:  PolicyFirst,
				Passive: PassiveConfig{MaxFails: 3, Cooldown: time.Hour, UnhealthyStatus: []int{502}},
				Retries: RetryConfig{Max: -1},
			})
			if len(tc.members) > 1 {
				// the dead member fails first and is ejected: sick is left alone
				p.Members()[1].st.ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
			}
			for i := range 10 {
				resp, err := get(p, "")
				if err != nil || resp.StatusCode != http.StatusBadGateway {
					t.Fatalf("request %d: %v %v, want the member's own 502", i, resp, err)
				}
			}
			if hits.Load() != 10 {
				t.Fatalf("member saw %d of 10 requests", hits.Load())
			}
			if !p.Members()[0].Available() || p.Status()[0].Ejected {
				t.Fatal("the last available member was ejected")
			}
		})
	}
}

// TestNoHealthyMemberSaysWhy takes every member down by its health check (a bad
// status, a refused connection, a timeout) and checks that the error the reverse
// door logs with its 503 names each member and why it is out.
func TestNoHealthyMemberSaysWhy(t *testing.T) {
	bad := newOrigin(t, "bad")
	bad.healthy.Store(false)
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stop) })
	dead := deadAddr(t)
	cfg := Config{
		Members: []MemberConfig{{URL: bad.srv.URL}, {URL: dead}, {URL: slow.URL}},
		Health:  HealthConfig{Path: "/health", Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1},
	}
	p := newPool(t, cfg)
	p.CheckNow(context.Background())
	_, err := get(p, "")
	if !errors.Is(err, ErrNoHealthyMember) {
		t.Fatalf("error %v, want ErrNoHealthyMember", err)
	}
	for _, want := range []string{
		bad.srv.URL + ": health check failed: GET /health: status 503",
		dead + ": health check failed: GET /health:",
		"connection refused",
		slow.URL + ": health check failed: GET /health: no answer within 200ms (timeout)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := p.Select(""); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Select: %v, want the members' reasons", err)
	}
	for i, st := range p.Status() {
		if st.LastError == "" || st.Healthy {
			t.Errorf("member %d status %+v, want down with its last error", i, st)
		}
	}
}

// TestKeyByPolicy: each hashing policy computes its own key from the
// request; the others have none.
func TestKeyByPolicy(t *testing.T) {
	client := netip.MustParseAddr("192.0.2.7")
	r := httptest.NewRequest("GET", "http://example.test/", nil)
	r.Header.Set("X-User", "alice")
	r.AddCookie(&http.Cookie{Name: "session", Value: "s1"})
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Policy: PolicyIPHash}, "192.0.2.7"},
		{Config{Policy: PolicyHash, HashKey: "header:x-user"}, "alice"},
		{Config{Policy: PolicyHash, HashKey: "cookie:session"}, "s1"},
		{Config{Policy: PolicyHash, HashKey: "cookie:other"}, ""},
		{Config{Policy: PolicyRoundRobin}, ""},
		{Config{Policy: PolicyLeastConn}, ""},
	} {
		c.cfg.Members = []MemberConfig{{URL: "http://127.0.0.1:1"}}
		p, err := New("k", c.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Key(r, client); got != c.want {
			t.Errorf("%s %s: key %q, want %q", c.cfg.Policy, c.cfg.HashKey, got, c.want)
		}
		p.Close()
	}
}
