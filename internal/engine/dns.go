package engine

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/dnsserver"
	"github.com/portcullis/portcullis/rules"
)

// buildDNS prepares the DNS server's settings for st (one server for the process,
// updated in place when st is committed) and asks for its listeners.
func (e *Engine) buildDNS(st *state) error {
	cfg := st.file.Policy.DNS
	if cfg == nil {
		return nil
	}
	prog := st.program
	opts := dnsserver.Options{
		Config: cfg,
		Policy: prog,
		Groups: func(client netip.Addr) []string {
			return prog.GroupsOf(&rules.Facts{Client: client})
		},
		Resolver: st.resolver,
		Health:   poolHealth{e.shared},
		Log:      e.shared.accessLog(),
		Logger:   e.log.With("door", "dns"),
		Now:      e.opts.Now,
	}
	// A server built from opts checks them and says where it listens; it serves only
	// when there is no live server yet.
	srv, err := dnsserver.New(opts)
	if err != nil {
		return err
	}
	s := e.shared
	s.dnsMu.Lock()
	live := s.dns
	s.dnsMu.Unlock()
	serving := live
	if live == nil {
		st.stage.dns, serving = srv, srv
	} else {
		st.stage.dnsOpts = &opts
	}
	for _, addr := range srv.Listen() {
		st.listens = append(st.listens, dnsListen(addr, serving))
	}
	return nil
}

// poolHealth adapts the shared pools to GSLB's Health.
type poolHealth struct{ s *shared }

func (p poolHealth) Healthy(pool string) bool { return p.s.poolHealth(pool) }

// dnsListen binds addr on TCP and on UDP (one socket per CPU when the port is
// fixed, the same port as TCP when addr asks for port 0) and serves them until the
// listener is closed.
func dnsListen(addr string, srv *dnsserver.Server) listenSpec {
	return listenSpec{key: listenKey{"dns", addr}, start: func(e *Engine) (*listener, error) {
		pcs, ln, err := bindDNS(addr)
		if err != nil {
			return nil, &BindError{Kind: "dns", Addr: addr, Err: err}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i, pc := range pcs {
			var tcp net.Listener
			if i == 0 {
				tcp = accept.New(ln, "dns "+ln.Addr().String(), e.log, &e.shared.accepts)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.Serve(ctx, pc, tcp); err != nil {
					e.log.Error("DNS listener stopped", "addr", addr, "error", err)
				}
			}()
		}
		return &listener{key: listenKey{"dns", addr}, addr: pcs[0].LocalAddr(), shutdown: func(context.Context) {
			cancel()
			wg.Wait()
		}}, nil
	}}
}

func bindDNS(addr string) ([]net.PacketConn, net.Listener, error) {
	if _, port, _ := net.SplitHostPort(addr); port != "0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		pcs, err := dnsserver.BindUDP(context.Background(), addr)
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		return pcs, ln, nil
	}
	var lastErr error
	for range 10 { // port 0: the UDP port chosen may be taken on TCP; try another
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return []net.PacketConn{pc}, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, lastErr
}
