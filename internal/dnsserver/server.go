// Package dnsserver owns the DNS door of Portcullis: a filtering DNS server on UDP
// and TCP that applies the policy's rules to every query (blocked names answered
// with NXDOMAIN or the block page's address, CNAME-cloaked trackers caught),
// enforces SafeSearch per client group by CNAME, forwards the rest through the
// resolver's cache, and answers a GSLB zone authoritatively with the closest
// healthy site for the client (EDNS Client Subnet or source address).
package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/rules"
)

// Exchanger forwards a query and returns the reply, which the caller then owns;
// *resolver.Resolver implements it. An NXDOMAIN or SERVFAIL is a reply; an error
// means no upstream answered.
type Exchanger interface {
	Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// Options are what New needs. Only Config is required.
type Options struct {
	// Config is the server's policy-file section (zero fields take defaults).
	Config *Config
	// Policy decides each query (Facts{Door: DoorDNS, Client, Host, QType, Time})
	// and each CNAME target of a forwarded answer. nil allows everything.
	Policy rules.Evaluator
	// Groups returns the groups of a client address, for per-group SafeSearch.
	// nil means no client is in a group.
	Groups func(client netip.Addr) []string
	// Resolver forwards what is not blocked, rewritten or in the GSLB zone. nil
	// answers such queries with REFUSED.
	Resolver Exchanger
	// Health reports pool health for GSLB sites; nil means every site is healthy.
	Health Health
	// Log receives one entry per query; nil logs nothing.
	Log accesslog.Logger
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Server is the DNS door. Its listeners live as long as Serve; Update swaps the
// configuration and collaborators underneath them, atomically, so a policy reload
// keeps the sockets (but not Config.Listen changes, which need a new Serve).
type Server struct {
	state atomic.Pointer[state]
	bufs  sync.Pool // *[]byte for replies answered in wire form
	busy  inflight  // queries waiting for an upstream (Config.MaxInFlight)
	// handlers counts the goroutines serveUDP started, bounded by maxHandlers.
	handlers atomic.Int64
}

// state is one immutable configuration of the server (the GSLB round-robin
// counters aside).
type state struct {
	cfg      Config
	policy   rules.Evaluator
	groups   func(netip.Addr) []string
	res      Exchanger
	health   Health
	log      accesslog.Logger
	logger   *slog.Logger
	now      func() time.Time
	gslb     *gslb
	groupSS  map[string]filter.SafeSearch // per group: the top level refined by the group
	ttl      uint32
	blockA   []byte // block_address_v4 in wire form
	blockAAA []byte
}

// New validates opts.Config and builds a Server.
func New(opts Options) (*Server, error) {
	s := &Server{}
	if err := s.Update(opts); err != nil {
		return nil, err
	}
	return s, nil
}

// Update replaces the server's configuration and collaborators; queries in flight
// finish with the old ones. It is cheap: call it on every policy reload.
func (s *Server) Update(opts Options) error {
	if opts.Config == nil {
		return errors.New("dnsserver: Options.Config is nil")
	}
	if errs := opts.Config.Validate(); len(errs) > 0 {
		joined := make([]error, len(errs))
		for i, e := range errs {
			joined[i] = e
		}
		return fmt.Errorf("dnsserver: %w", errors.Join(joined...))
	}
	cfg := opts.Config.withDefaults()
	st := &state{
		cfg:      cfg,
		policy:   opts.Policy,
		groups:   opts.Groups,
		res:      opts.Resolver,
		health:   opts.Health,
		log:      opts.Log,
		logger:   opts.Logger,
		now:      opts.Now,
		gslb:     compileGSLB(cfg.GSLB),
		ttl:      seconds(cfg.TTL),
		blockA:   cfg.BlockAddressV4.AsSlice(),
		blockAAA: cfg.BlockAddressV6.AsSlice(),
	}
	if len(cfg.Groups) > 0 {
		st.groupSS = make(map[string]filter.SafeSearch, len(cfg.Groups))
		for g, gc := range cfg.Groups {
			st.groupSS[g] = gc.SafeSearch.Over(cfg.SafeSearch)
		}
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	if st.now == nil {
		st.now = time.Now
	}
	s.state.Store(st)
	return nil
}

// Listen returns the configured listen addresses (with defaults applied).
func (s *Server) Listen() []string { return s.state.Load().cfg.Listen }

// shutdownTimeout bounds how long Serve waits for queries in flight when its
// context ends.
const shutdownTimeout = 5 * time.Second

// Serve answers queries on pconn (UDP) and ln (TCP) until ctx ends, then shuts
// both down (waiting up to 5 s for queries in flight), closes them and returns
// nil; either may be nil. It returns early with the error of a listener that fails. A UDP socket
// bound to one address is served by Portcullis's own read loop (see serveUDP);
// a wildcard one, and TCP, by miekg/dns.
func (s *Server) Serve(ctx context.Context, pconn net.PacketConn, ln net.Listener) error {
	if pconn == nil && ln == nil {
		return errors.New("dnsserver: nothing to serve")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if uc, ok := pconn.(interface{ SetReadBuffer(int) error }); ok {
		// Room for bursts (Unbound's so-rcvbuf advice); the kernel caps it at
		// net.core.rmem_max, so this is best effort.
		uc.SetReadBuffer(udpReadBuffer)
	}
	var servers []*dns.Server
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	if uc, ok := fastUDP(pconn); ok {
		wg.Go(func() { errc <- s.serveUDP(ctx, uc) })
	} else if pconn != nil {
		servers = append(servers, &dns.Server{PacketConn: pconn, Handler: s})
	}
	if ln != nil {
		servers = append(servers, &dns.Server{Listener: ln, Handler: s, ReadTimeout: 10 * time.Second, IdleTimeout: idleTimeout})
	}
	started := make(chan struct{}, len(servers))
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		wg.Go(func() { errc <- srv.ActivateAndServe() })
	}
	var err error
	for range servers {
		select {
		case <-started:
		case err = <-errc:
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	}
	cancel() // stops serveUDP
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer scancel()
	for _, srv := range servers {
		srv.ShutdownContext(sctx) // an error means it had already stopped, or not started yet
	}
	// A server that had not started when ctx ended (ShutdownContext then does
	// nothing) would start afterwards and serve forever: closing its sockets
	// ends it at once. ShutdownContext closes them too.
	if ln != nil {
		ln.Close()
	}
	if pconn != nil {
		pconn.Close()
	}
	wg.Wait()
	return err
}

// udpReadBuffer is the receive buffer asked for each UDP socket: about 4,000
// queued queries, so that a burst (or a flood of misses being dropped) does not
// make the kernel discard the cached lookups queued behind it.
const udpReadBuffer = 4 << 20

func idleTimeout() time.Duration { return 10 * time.Second }

// ListenAndServe binds every Config.Listen address on TCP and on UDP — with one
// UDP socket per CPU sharing the address (SO_REUSEPORT) when the port is fixed, so
// queries are read in parallel — and serves them until ctx ends (see Serve). If
// one socket fails the others are stopped.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type pair struct {
		pc net.PacketConn
		ln net.Listener
	}
	var pairs []pair
	closeAll := func() {
		for _, p := range pairs {
			if p.pc != nil {
				p.pc.Close()
			}
			if p.ln != nil {
				p.ln.Close()
			}
		}
	}
	for _, addr := range s.Listen() {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("dnsserver: %w", err)
		}
		sockets := 1
		lc := net.ListenConfig{}
		if _, port, _ := net.SplitHostPort(addr); port != "0" && haveReusePort {
			sockets = runtime.GOMAXPROCS(0)
			lc.Control = reusePort
		}
		for i := range sockets {
			pc, err := lc.ListenPacket(ctx, "udp", addr)
			if err != nil {
				ln.Close()
				closeAll()
				return fmt.Errorf("dnsserver: %w", err)
			}
			p := pair{pc: pc}
			if i == 0 {
				p.ln = ln
			}
			pairs = append(pairs, p)
		}
	}
	errc := make(chan error, len(pairs))
	for _, p := range pairs {
		go func() { errc <- s.Serve(ctx, p.pc, p.ln) }()
	}
	var first error
	for range pairs {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// mayRecurse reports whether the server forwards and rewrites for client.
func (st *state) mayRecurse(client netip.Addr) bool {
	for _, p := range st.cfg.AllowClients {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// safeSearch returns what SafeSearch enforces for client: the strictest
// combination of its listed groups' settings (each the top level refined by the
// group), else the top-level one.
func (st *state) safeSearch(client netip.Addr) filter.SafeSearch {
	if len(st.groupSS) == 0 || st.groups == nil {
		return st.cfg.SafeSearch
	}
	var ss filter.SafeSearch
	found := false
	for _, g := range st.groups(client) {
		if gs, ok := st.groupSS[g]; ok {
			ss = ss.Merge(gs)
			found = true
		}
	}
	if !found {
		return st.cfg.SafeSearch
	}
	return ss
}

// BindUDP binds addr for UDP the way ListenAndServe does: one socket per CPU sharing
// the address (SO_REUSEPORT) when the port is fixed, so queries are read in
// parallel; a single socket for port 0 or where SO_REUSEPORT is missing. Serve each
// socket with Serve (the first one together with the TCP listener).
func BindUDP(ctx context.Context, addr string) ([]net.PacketConn, error) {
	sockets := 1
	lc := net.ListenConfig{}
	if _, port, _ := net.SplitHostPort(addr); port != "0" && haveReusePort {
		sockets = runtime.GOMAXPROCS(0)
		lc.Control = reusePort
	}
	var out []net.PacketConn
	for range sockets {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, err
		}
		out = append(out, pc)
	}
	return out, nil
}
