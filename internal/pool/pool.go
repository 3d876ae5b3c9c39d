// Package pool owns upstream pools: their members, the selection policies that
// choose among them, active and passive health, retries within a budget, and the
// per-member HTTP clients (internal/upstream). The reverse door sends requests through
// (*Pool).Transport, forward mode uses pools for parent proxies, and the DNS GSLB
// responder reads member health from Members and Status.
//
// A Pool survives policy reloads: (*Pool).Update swaps in a new configuration and
// keeps each remaining member's health, in-flight count and idle connections;
// (*Pool).Prepare builds one beside the current one, put in force by
// (*Pending).Commit or dropped by (*Pending).Discard.
package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/upstream"
)

// ErrNoHealthyMember is returned when every member is down or ejected. The
// reverse door answers 503.
var ErrNoHealthyMember = errors.New("pool: no healthy member")

// NoHealthyError is the error a pool returns when no member is available: it
// says why each member is out (its last health check's error, or its passive
// ejection), so that the 503's log line and the status page explain themselves.
// errors.Is(err, ErrNoHealthyMember) holds for it.
type NoHealthyError struct {
	// Pool is the pool's name.
	Pool string
	// Reasons has one "MEMBER: why" entry per member, in configuration order.
	Reasons []string
}

// Error implements error.
func (e *NoHealthyError) Error() string {
	return fmt.Sprintf("pool %s: no healthy member (%s)", e.Pool, strings.Join(e.Reasons, "; "))
}

// Is reports whether target is ErrNoHealthyMember.
func (e *NoHealthyError) Is(target error) bool { return target == ErrNoHealthyMember }

// noHealthy explains why no member of s is available.
func (p *Pool) noHealthy(s *state) error {
	e := &NoHealthyError{Pool: p.name, Reasons: make([]string, 0, len(s.members))}
	now := p.now().UnixNano()
	for _, m := range s.members {
		st := m.st
		st.mu.Lock()
		checkErr, ejectErr := st.lastError, st.ejectError
		st.mu.Unlock()
		var why string
		switch until := st.ejectedUntil.Load(); {
		case !st.healthy.Load() && checkErr != "":
			why = "health check failed: " + checkErr
		case !st.healthy.Load():
			why = "health check failed"
		case until != 0 && now < until:
			why = "ejected after failed requests"
			if ejectErr != "" {
				why += ": " + ejectErr
			}
		default:
			why = "available"
		}
		e.Reasons = append(e.Reasons, m.name+": "+why)
	}
	if len(s.members) == 0 {
		e.Reasons = append(e.Reasons, "no members")
	}
	return e
}

// Pool is a named set of upstream members with a selection policy and health.
// It is safe for concurrent use.
type Pool struct {
	name    string
	logger  *slog.Logger
	state   atomic.Pointer[state]
	budget  budget
	changed chan struct{} // wakes Run after Update
	mu      sync.Mutex    // serialises Update
	ejectMu sync.Mutex    // serialises passive ejections (never the last member)
	now     func() time.Time
}

// state is one configuration of the pool; it is replaced whole by Update.
type state struct {
	cfg      Config // with defaults applied
	members  []*Member
	selector Selector
	trKey    transportKey
	tlsCfg   *tls.Config // members' client TLS settings (nil: defaults)
}

// Member is one upstream of a pool. URL and Weight are fixed for the lifetime of
// the Member; health and load live in state shared with the Member that replaces
// it on Update.
type Member struct {
	// URL is the member's base URL (scheme, host, optional path prefix).
	URL *url.URL
	// Weight is the member's relative share (at least 1).
	Weight int

	name string
	rt   *upstream.Client
	st   *memberState
	now  func() time.Time
}

// memberState is the health and load of a member, kept across reloads.
type memberState struct {
	healthy      atomic.Bool  // verdict of active checks (true until checks say otherwise)
	ejectedUntil atomic.Int64 // passive ejection end, unix nanoseconds; 0 = not ejected
	inFlight     atomic.Int64
	consecFails  atomic.Int64 // consecutive failed requests (passive)
	failures     atomic.Int64 // failed requests since start

	mu         sync.Mutex // guards the fields below
	checkPass  int        // consecutive passing active checks
	checkFail  int        // consecutive failing active checks
	lastCheck  time.Time
	lastError  string // last active check's error ("" when it passed)
	ejectError string // the request error that last ejected the member
}

// String returns the member's URL.
func (m *Member) String() string { return m.name }

// Available reports whether the member may be selected: its active checks pass
// and it is not ejected by passive health.
func (m *Member) Available() bool {
	if !m.st.healthy.Load() {
		return false
	}
	until := m.st.ejectedUntil.Load()
	return until == 0 || m.now().UnixNano() >= until
}

// InFlight is the number of requests the member is serving now.
func (m *Member) InFlight() int64 { return m.st.inFlight.Load() }

// MemberStatus is a member's health as reported by the admin endpoint.
type MemberStatus struct {
	URL            string    `json:"url"`
	Weight         int       `json:"weight"`
	Healthy        bool      `json:"healthy"`         // selectable now (Available)
	CheckHealthy   bool      `json:"check_healthy"`   // active checks' verdict
	Ejected        bool      `json:"ejected"`         // passive ejection in force
	InFlight       int64     `json:"in_flight"`       // requests in flight
	RecentFailures int64     `json:"recent_failures"` // consecutive failed requests
	Failures       int64     `json:"failures"`        // failed requests since start
	LastCheck      time.Time `json:"last_check,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// New builds a pool from cfg (validated here too). Call Run to start active
// health checks; without it every member counts as healthy unless passive
// health ejects it.
func New(name string, cfg Config, logger *slog.Logger) (*Pool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		name:    name,
		logger:  logger.With("pool", name),
		changed: make(chan struct{}, 1),
		now:     time.Now,
	}
	if err := p.Update(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// clock returns the pool's time (a test may replace p.now before use).
func (p *Pool) clock() time.Time { return p.now() }

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Members returns the current members in configuration order. The slice must
// not be modified.
func (p *Pool) Members() []*Member { return p.state.Load().members }

// Key returns the key the pool's selection policy hashes for r, sent by
// client (a Keyer's; "" for policies that do not hash). A door puts it in the
// request's Info.Key.
func (p *Pool) Key(r *http.Request, client netip.Addr) string {
	if k, ok := p.state.Load().selector.(Keyer); ok {
		return k.Key(r, client)
	}
	return ""
}

// Policy returns the configured selection policy name.
func (p *Pool) Policy() string { return p.state.Load().cfg.Policy }

// Parent reports whether the members are parent proxies (parent: true).
func (p *Pool) Parent() bool { return p.state.Load().cfg.Parent }

// Healthy reports whether any member is available.
func (p *Pool) Healthy() bool {
	return slices.ContainsFunc(p.Members(), (*Member).Available)
}

// Select returns the member the pool's policy picks for key, or
// ErrNoHealthyMember.
func (p *Pool) Select(key string) (*Member, error) {
	s := p.state.Load()
	if m := s.selector.Select(p, key); m != nil {
		return m, nil
	}
	return nil, p.noHealthy(s)
}

// Status reports every member's health and load.
func (p *Pool) Status() []MemberStatus {
	ms := p.Members()
	out := make([]MemberStatus, len(ms))
	now := p.now().UnixNano()
	for i, m := range ms {
		st := m.st
		until := st.ejectedUntil.Load()
		st.mu.Lock()
		out[i] = MemberStatus{
			URL:            m.name,
			Weight:         m.Weight,
			Healthy:        m.Available(),
			CheckHealthy:   st.healthy.Load(),
			Ejected:        until != 0 && now < until,
			InFlight:       st.inFlight.Load(),
			RecentFailures: st.consecFails.Load(),
			Failures:       st.failures.Load(),
			LastCheck:      st.lastCheck,
			LastError:      st.lastError,
		}
		st.mu.Unlock()
	}
	return out
}

// transportKey is what the per-member transports are built from; members keep
// their transport (and its idle connections) across an Update that leaves it equal.
type transportKey struct {
	dial, tlsHandshake, responseHeader, idle time.Duration
	maxIdle                                  int
	tls                                      TLSConfig
	parent                                   bool
	credentials                              string
}

// Update replaces the pool's configuration. Members whose URL remains keep
// their health state, in-flight count and (when the timeouts and TLS settings
// are unchanged) their connections; removed members' idle connections are
// closed. Requests in flight finish on the member they started on. On error the
// pool is unchanged.
func (p *Pool) Update(cfg Config) error {
	next, err := p.build(cfg)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next.derive(p.state.Load())
	p.commit(next)
	return nil
}

// Pending is a configuration prepared by Prepare and not yet in force: until
// Commit the pool selects, checks and reports its current one.
type Pending struct {
	p    *Pool
	next *state
	base *state // the state next was derived from
	done bool
}

// Prepare builds cfg's configuration beside the current one without changing
// the pool, for a caller that must check other things before applying it
// (a policy reload). Members that stay will share their health state with the
// current ones, as with Update. Commit puts it in force; Discard drops it. The
// caller must not Update the pool between Prepare and Commit.
func (p *Pool) Prepare(cfg Config) (*Pending, error) {
	next, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	base := p.state.Load()
	next.derive(base)
	return &Pending{p: p, next: next, base: base}, nil
}

// Commit puts the prepared configuration in force, as Update would have. It does
// nothing after Commit or Discard.
func (u *Pending) Commit() {
	u.settle(func() { u.p.commit(u.next) })
}

// Discard drops the prepared configuration and the transports built for it; the
// pool is as before Prepare. It does nothing after Commit or Discard.
func (u *Pending) Discard() {
	u.settle(func() {
		for _, rt := range unshared(u.next, u.base) {
			rt.CloseIdleConnections()
		}
	})
}

// settle runs f under the pool's lock unless u was committed or discarded already.
func (u *Pending) settle(f func()) {
	u.p.mu.Lock()
	defer u.p.mu.Unlock()
	if !u.done {
		u.done = true
		f()
	}
}

// build validates cfg and returns its state without members' transports and
// health (derive sets them).
func (p *Pool) build(cfg Config) (*state, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("pool %s: %w", p.name, errors.Join(fieldErrs(errs)...))
	}
	cfg = cfg.withDefaults()
	sel, _ := newSelector(cfg.Policy, cfg.HashKey)
	tlsCfg, err := cfg.clientTLS()
	if err != nil {
		return nil, fmt.Errorf("pool %s: tls: %w", p.name, err)
	}
	if cfg.TLS.InsecureSkipVerify {
		p.logger.Warn("TLS verification of members is disabled (insecure_skip_verify)")
	}
	ns := &state{cfg: cfg, selector: sel, tlsCfg: tlsCfg, members: make([]*Member, len(cfg.Members)),
		trKey: transportKey{cfg.Dial, cfg.TLSHandshake, cfg.ResponseHeader, cfg.Idle, cfg.MaxIdlePerMember, cfg.TLS, cfg.Parent, cfg.Credentials}}
	for i, mc := range cfg.Members {
		u, _ := parseMemberURL(mc.URL) // validated above
		ns.members[i] = &Member{URL: u, Weight: mc.Weight, name: mc.URL, now: p.clock}
	}
	return ns, nil
}

// proxyURL returns the URL m's transport uses as its proxy: nil unless the
// members are parent proxies; with the credentials when configured.
func (ns *state) proxyURL(m *Member) *url.URL {
	if !ns.cfg.Parent {
		return nil
	}
	u := &url.URL{Scheme: m.URL.Scheme, Host: m.URL.Host}
	if ns.cfg.Credentials != "" {
		user, pass, _ := ParseCredentials(ns.cfg.Credentials) // validated
		u.User = url.UserPassword(user, pass)
	}
	return u
}

// derive gives ns's members the health state of old's members with the same URL
// (and their transports while the transport settings are equal), and fresh ones
// otherwise. old may be nil.
func (ns *state) derive(old *state) {
	prev := map[string]*Member{}
	if old != nil {
		for _, m := range old.members {
			prev[m.name] = m
		}
	}
	for _, m := range ns.members {
		if o := prev[m.name]; o != nil {
			m.st = o.st
			if old.trKey == ns.trKey {
				m.rt = o.rt
			}
		} else {
			m.st = &memberState{}
			m.st.healthy.Store(true)
		}
		if m.rt == nil {
			m.rt = newTransport(&ns.cfg, ns.tlsCfg, ns.proxyURL(m))
		}
	}
}

// commit puts ns in force and closes the idle connections of the transports the
// old state used and ns does not; p.mu is held.
func (p *Pool) commit(ns *state) {
	old := p.state.Swap(ns)
	for _, rt := range unshared(old, ns) {
		rt.CloseIdleConnections()
	}
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// unshared returns the transports of a's members that no member of b uses.
func unshared(a, b *state) []*upstream.Client {
	if a == nil {
		return nil
	}
	used := map[*upstream.Client]bool{}
	if b != nil {
		for _, m := range b.members {
			used[m.rt] = true
		}
	}
	var out []*upstream.Client
	for _, m := range a.members {
		if !used[m.rt] {
			used[m.rt] = true
			out = append(out, m.rt)
		}
	}
	return out
}

// Close closes every member's idle connections.
func (p *Pool) Close() {
	for _, m := range p.Members() {
		m.rt.CloseIdleConnections()
	}
}

func fieldErrs(errs []field.Error) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// Info is what the caller tells the pool's transport about one request, and
// what the transport reports back. Put it in the request's context with WithInfo.
type Info struct {
	// Key is the selection key: the client address for ip_hash, the header or
	// cookie value for hash; other policies ignore it.
	Key string
	// Member is set by the transport to the member that answered (or, on
	// failure, was tried last). It is for logs and never for clients.
	Member string
	// Attempts is set by the transport to the number of members tried.
	Attempts int
}

// InfoKey is the context key under which the transport looks for *Info.
// WithInfo sets it; a caller that keeps its own context type (as the reverse
// door does, to save allocations) may answer Value(InfoKey{}) itself.
type InfoKey struct{}

// WithInfo returns ctx carrying info for the pool's transport, which fills
// info.Member and info.Attempts. info must not be shared between requests.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, InfoKey{}, info)
}

// WithKey returns ctx carrying a selection key (a shorthand for WithInfo).
func WithKey(ctx context.Context, key string) context.Context {
	return WithInfo(ctx, &Info{Key: key})
}

func infoFrom(ctx context.Context) *Info {
	info, _ := ctx.Value(InfoKey{}).(*Info)
	return info
}

// recordSuccess notes a request the member answered.
func (p *Pool) recordSuccess(m *Member) {
	if m.st.consecFails.Load() != 0 {
		m.st.consecFails.Store(0)
	}
}

// recordFailure notes a failed request and ejects the member after max_fails
// consecutive failures.
func (p *Pool) recordFailure(s *state, m *Member, err error) {
	m.st.failures.Add(1)
	n := m.st.consecFails.Add(1)
	pc := s.cfg.Passive
	if pc.MaxFails <= 0 || n < int64(pc.MaxFails) {
		return
	}
	m.st.consecFails.Store(0)
	// The last available member is never ejected, as nginx and HAProxy keep
	// sending to a single server: taking it out turns bad answers into 503s
	// for everyone for the whole cool-down.
	p.ejectMu.Lock()
	others := slices.ContainsFunc(s.members, func(o *Member) bool { return o != m && o.Available() })
	if !others {
		p.ejectMu.Unlock()
		p.logger.Warn("member failing, not ejected: it is the last available member", "member", m.name, "failures", n, "err", err)
		return
	}
	m.st.ejectedUntil.Store(p.now().Add(pc.Cooldown).UnixNano())
	p.ejectMu.Unlock()
	m.st.mu.Lock()
	m.st.checkPass = 0 // rise passing checks from now on lift the ejection early
	if err != nil {
		m.st.ejectError = err.Error()
	}
	m.st.mu.Unlock()
	p.logger.Warn("member ejected", "member", m.name, "failures", n, "cooldown", pc.Cooldown, "err", err)
}

// clientTLSFor returns a copy of tc for one member (transports must not share
// a tls.Config they may mutate).
func clientTLSFor(tc *tls.Config) *tls.Config { return tc.Clone() }
