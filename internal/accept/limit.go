package accept

import (
	"net"
	"net/netip"
	"sync"
)

// Limit wraps ln so that at most maxConns of its connections are open at
// once (Accept waits for one to close, leaving the rest in the kernel's
// backlog) and at most perClient from one address (further ones are closed
// at once). Zero means unlimited. A connection's slot is freed when it is
// closed, or by the release function Detach returns.
func Limit(ln net.Listener, maxConns, perClient int) net.Listener {
	if maxConns <= 0 && perClient <= 0 {
		return ln
	}
	ll := &limitListener{Listener: ln, perClient: perClient, byClient: map[netip.Addr]int{}, done: make(chan struct{})}
	if maxConns > 0 {
		ll.sem = make(chan struct{}, maxConns)
	}
	return ll
}

type limitListener struct {
	net.Listener
	sem       chan struct{} // one token per open connection; nil = unlimited
	perClient int

	mu       sync.Mutex
	byClient map[netip.Addr]int
	done     chan struct{}
	once     sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if l.sem != nil {
			select {
			case l.sem <- struct{}{}:
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.release()
			return nil, err
		}
		addr := peer(c)
		if l.perClient > 0 {
			l.mu.Lock()
			n := l.byClient[addr]
			if n >= l.perClient {
				l.mu.Unlock()
				c.Close()
				l.release()
				continue
			}
			l.byClient[addr] = n + 1
			l.mu.Unlock()
		}
		return &limitConn{Conn: c, l: l, addr: addr}, nil
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) release() {
	if l.sem != nil {
		<-l.sem
	}
}

func (l *limitListener) closed(addr netip.Addr) {
	if l.perClient > 0 {
		l.mu.Lock()
		if n := l.byClient[addr] - 1; n > 0 {
			l.byClient[addr] = n
		} else {
			delete(l.byClient, addr)
		}
		l.mu.Unlock()
	}
	l.release()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	addr netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.free()
	return err
}

func (c *limitConn) free() { c.once.Do(func() { c.l.closed(c.addr) }) }

// Detach returns the connection under a Limit connection c and the function
// that frees c's slot, for code that takes the socket itself over (a CONNECT
// tunnel splicing it) and closes it directly: it must call release once done.
// For any other c it returns c and a no-op.
func Detach(c net.Conn) (bare net.Conn, release func()) {
	if lc, ok := c.(*limitConn); ok {
		return lc.Conn, lc.free
	}
	return c, func() {}
}

// Bare returns the connection under a Limit connection c, or c: for reading
// socket state (a non-blocking peek); closing it would leak c's slot.
func Bare(c net.Conn) net.Conn {
	if lc, ok := c.(*limitConn); ok {
		return lc.Conn
	}
	return c
}

// peer is c's remote address (IPv4-mapped addresses unmapped).
func peer(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}
