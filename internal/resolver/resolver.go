// Package resolver owns name resolution for Portcullis: the upstream DNS clients
// (UDP with TCP fallback, TCP, DNS over TLS, the OS resolver) with failover, the
// answer cache (TTL floor and ceiling, RFC 2308 negative caching), de-duplication of
// identical in-flight queries, CNAME chains for cloaking checks, and the dialer the
// proxies connect with: Happy Eyeballs over the resolved addresses behind the
// egress guard, which refuses loopback, private, link-local, CGNAT, metadata and
// other non-public destinations (DNS rebinding) unless the policy allows a range.
package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ErrUpstreams is wrapped by the error Exchange and the lookups return when no
// upstream gave an answer (every one timed out or failed).
var ErrUpstreams = errors.New("resolver: no upstream answered")

// failBackoff is how long an upstream that failed is tried after the others.
const failBackoff = 30 * time.Second

// maxChain bounds the CNAME chain followed for one name.
const maxChain = 12

// Resolver resolves names through its upstreams and cache and dials through the
// egress guard. It is safe for concurrent use; build one per configuration and
// Close it when replaced.
type Resolver struct {
	cfg       Config
	log       *slog.Logger
	ups       []*upstreamState
	cache     *cache // nil when disabled
	flights   flightGroup
	guard     Guard
	checkName func(name string) error
	now       func() time.Time
	dialer    net.Dialer
}

type upstreamState struct {
	u           upstream
	failedUntil atomic.Int64 // unix nanoseconds
}

// Option adjusts a Resolver at construction.
type Option func(*Resolver)

// WithCheckName installs a hook DialContext calls with every name of a CNAME chain
// after the first (the names the caller did not ask for); an error refuses the
// dial with that error. It catches trackers cloaked behind first-party CNAMEs.
func WithCheckName(fn func(name string) error) Option {
	return func(r *Resolver) { r.checkName = fn }
}

// WithListeners makes the egress guard refuse the process's own listening
// addresses, as self holds them at each dial.
func WithListeners(self *Listeners) Option {
	return func(r *Resolver) { r.guard.self = self }
}

// WithClock replaces time.Now (for tests of TTL handling).
func WithClock(now func() time.Time) Option {
	return func(r *Resolver) { r.now = now }
}

// New builds a Resolver from cfg (zero fields take their defaults). logger may be
// nil.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Resolver, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("resolver: %w", errors.Join(fieldErrs(errs)...))
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{cfg: cfg, log: logger, guard: Guard{allow: cfg.Egress.Allow}, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("resolver: tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("resolver: tls_ca_file %s: no certificate found", cfg.TLSCAFile)
		}
		tlsConf.RootCAs = pool
	}
	for _, s := range cfg.Upstreams {
		spec, _ := parseUpstream(s) // validated above
		r.ups = append(r.ups, &upstreamState{u: newUpstream(spec, cfg.Timeout, tlsConf)})
	}
	if cfg.Cache.MaxEntries > 0 {
		r.cache = newCache(cfg.Cache.MaxEntries)
	}
	r.dialer = net.Dialer{Timeout: dialTimeout, ControlContext: r.guard.control}
	return r, nil
}

func fieldErrs[E error](errs []E) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// Close releases idle upstream connections. Lookups after Close still work.
func (r *Resolver) Close() error {
	for _, s := range r.ups {
		switch u := s.u.(type) {
		case *streamUpstream:
			u.close()
		case *udpUpstream:
			u.close()
		}
	}
	return nil
}

// CacheStats returns the cache's hit and miss counts and its size.
func (r *Resolver) CacheStats() (hits, misses uint64, entries int) {
	if r.cache == nil {
		return 0, 0, 0
	}
	return r.cache.hits.Load(), r.cache.misses.Load(), r.cache.len()
}

// Exchange answers q's first question from the cache or the upstreams and returns
// a reply the caller owns, with q's ID and question. The DO and CD bits of q are
// honoured; other EDNS options are not forwarded. An NXDOMAIN or SERVFAIL is a
// reply, not an error; the error (wrapping ErrUpstreams) means no upstream replied.
func (r *Resolver) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) == 0 {
		return nil, errors.New("resolver: query without a question")
	}
	qq := q.Question[0]
	k := cacheKey{name: strings.ToLower(qq.Name), qtype: qq.Qtype, qclass: qq.Qclass, cd: q.CheckingDisabled}
	if opt := q.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	m, err := r.lookup(ctx, k)
	if err != nil {
		return nil, err
	}
	m.Id = q.Id
	m.Question = []dns.Question{qq}
	return m, nil
}

// ExchangeCached answers q like Exchange, but from the cache alone: ok is false
// when the answer is not cached (nothing is sent upstream). A DNS server uses it
// to answer cached names at once and to count only real upstream work against
// its in-flight bounds.
func (r *Resolver) ExchangeCached(q *dns.Msg) (m *dns.Msg, ok bool) {
	if len(q.Question) == 0 {
		return nil, false
	}
	qq := q.Question[0]
	k := cacheKey{name: strings.ToLower(qq.Name), qtype: qq.Qtype, qclass: qq.Qclass, cd: q.CheckingDisabled}
	if opt := q.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	if !strings.HasSuffix(k.name, ".") {
		k.name += "."
	}
	if m, ok := localhost(k); ok {
		m.Id = q.Id
		m.Question = []dns.Question{qq}
		return m, true
	}
	if r.cache == nil {
		return nil, false
	}
	now := r.now()
	e := r.cache.get(k, now)
	if e == nil {
		return nil, false
	}
	m = e.aged(now)
	m.Id = q.Id
	m.Question = []dns.Question{qq}
	return m, true
}

// lookup returns a copy of the answer for k.
func (r *Resolver) lookup(ctx context.Context, k cacheKey) (*dns.Msg, error) {
	if !strings.HasSuffix(k.name, ".") {
		k.name += "."
	}
	if m, ok := localhost(k); ok {
		return m, nil
	}
	if r.cache != nil {
		if e := r.cache.get(k, r.now()); e != nil {
			return e.aged(r.now()), nil
		}
	}
	m, err := r.flights.do(ctx, k, r.flightTimeout(), func(ctx context.Context) (*dns.Msg, error) {
		return r.fetch(ctx, k)
	})
	if err != nil {
		return nil, err
	}
	return m.Copy(), nil
}

// flightTimeout bounds one de-duplicated fetch: every upstream may take a full
// attempt.
func (r *Resolver) flightTimeout() time.Duration {
	return r.cfg.Timeout * time.Duration(len(r.ups)+1)
}

// fetch asks the upstreams in order (recently failed ones last) and caches the
// answer. The returned message is shared and must not be modified.
func (r *Resolver) fetch(ctx context.Context, k cacheKey) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(k.name, k.qtype)
	q.Question[0].Qclass = k.qclass
	q.RecursionDesired = true
	q.CheckingDisabled = k.cd
	q.SetEdns0(ednsSize, k.do)

	var lastErr error
	var lastReply *dns.Msg
	for _, s := range r.order() {
		actx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		q.Id = dns.Id()
		reply, err := s.u.exchange(actx, q)
		cancel()
		if err == nil && !sameQuestion(reply, q) {
			err = errMismatch
		}
		if err == nil && reply.Rcode != dns.RcodeServerFailure && reply.Rcode != dns.RcodeRefused {
			s.failedUntil.Store(0)
			r.store(k, reply)
			return reply, nil
		}
		s.failedUntil.Store(r.now().Add(failBackoff).UnixNano())
		if err != nil {
			lastErr = err
			r.log.Debug("dns upstream failed", "upstream", s.u.String(), "name", k.name, "err", err)
		} else {
			lastReply = reply
			r.log.Debug("dns upstream refused", "upstream", s.u.String(), "name", k.name, "rcode", dns.RcodeToString[reply.Rcode])
		}
		if ctx.Err() != nil {
			break
		}
	}
	if lastReply != nil {
		return lastReply, nil
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrUpstreams, k.name, lastErr)
}

// errMismatch is an upstream reply whose question is not the one asked.
var errMismatch = errors.New("resolver: reply to another question")

func sameQuestion(reply, q *dns.Msg) bool {
	return len(reply.Question) == 1 && reply.Question[0].Qtype == q.Question[0].Qtype &&
		reply.Question[0].Qclass == q.Question[0].Qclass && strings.EqualFold(reply.Question[0].Name, q.Question[0].Name)
}

// order returns the upstreams in configured order, those that failed within
// failBackoff moved to the end.
func (r *Resolver) order() []*upstreamState {
	if len(r.ups) == 1 {
		return r.ups
	}
	now := r.now().UnixNano()
	out := make([]*upstreamState, 0, len(r.ups))
	for _, s := range r.ups {
		if s.failedUntil.Load() <= now {
			out = append(out, s)
		}
	}
	for _, s := range r.ups {
		if s.failedUntil.Load() > now {
			out = append(out, s)
		}
	}
	return out
}

// store caches reply under k when it may be cached.
func (r *Resolver) store(k cacheKey, reply *dns.Msg) {
	if r.cache == nil {
		return
	}
	ttl := prepare(reply, r.cfg.Cache)
	if ttl <= 0 {
		return
	}
	now := r.now()
	e := &cacheEntry{msg: reply, stored: now, expires: now.Add(ttl), cnames: cnameTargets(reply)}
	e.wire, e.ttlOffs = wireForm(reply)
	r.cache.set(k, e)
}

// flightGroup de-duplicates concurrent fetches of one key: the first caller's
// fetch runs in a goroutine the group owns (bounded by its timeout), and every
// caller waits for it or for its own context.
type flightGroup struct {
	mu sync.Mutex
	m  map[cacheKey]*flight
	// joined, when set (tests), receives a value each time a caller joins a
	// flight already in progress.
	joined chan<- struct{}
}

type flight struct {
	done chan struct{}
	msg  *dns.Msg
	err  error
}

func (g *flightGroup) do(ctx context.Context, k cacheKey, timeout time.Duration, fn func(context.Context) (*dns.Msg, error)) (*dns.Msg, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[cacheKey]*flight)
	}
	f, ok := g.m[k]
	if ok && g.joined != nil {
		g.joined <- struct{}{}
	}
	if !ok {
		f = &flight{done: make(chan struct{})}
		g.m[k] = f
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		go func() {
			defer cancel()
			f.msg, f.err = fn(fctx)
			g.mu.Lock()
			delete(g.m, k)
			g.mu.Unlock()
			close(f.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.msg, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
