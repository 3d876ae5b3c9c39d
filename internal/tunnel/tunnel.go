// Package tunnel is the tunnel core every door shares: it relays bytes between
// two connections (a client and an upstream) both ways, passes half-closes on,
// ends a tunnel that stayed idle, counts the bytes for the access log, and
// tracks open tunnels in a Set so that a reload keeps them and a shutdown can
// wait for them. It knows nothing of HTTP: CONNECT, WebSocket upgrades, SOCKS5
// and intercepted TLS all hand it two net.Conns.
//
// Between two *net.TCPConn the copies splice kernel-side (on Linux through a
// pipe of the direction's own, with raw non-blocking splice calls: see
// spliceCopy); on Linux an idle tunnel waits for bytes without a splice pipe
// and without a goroutine (its directions park in the Set's epoll instance),
// so it holds its two sockets and a few hundred bytes of state.
package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/park"
)

// ErrShuttingDown is returned when a tunnel is opened after Set.Shutdown began.
var ErrShuttingDown = errors.New("tunnel: shutting down")

// Set tracks open tunnels, so that a reload keeps them and a shutdown can wait
// for them and then close them. Build one with NewSet and share it across
// reloads. Safe for concurrent use.
type Set struct {
	mu       sync.Mutex
	open     map[*Tunnel]struct{}
	closing  bool
	drained  chan struct{} // closed when the last tunnel ends after Shutdown began
	accepted atomic.Int64
	parker   park.Set // the parked directions of idle tunnels
}

// NewSet returns an empty set.
func NewSet() *Set {
	return &Set{open: make(map[*Tunnel]struct{})}
}

// Len returns the number of open tunnels.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Total returns the number of tunnels opened since NewSet.
func (s *Set) Total() int64 { return s.accepted.Load() }

// Each calls f for every open tunnel (a snapshot: f may close it).
func (s *Set) Each(f func(*Tunnel)) {
	s.mu.Lock()
	list := make([]*Tunnel, 0, len(s.open))
	for t := range s.open {
		list = append(list, t)
	}
	s.mu.Unlock()
	for _, t := range list {
		f(t)
	}
}

// CloseAll closes every open tunnel now (both sides); new tunnels are still accepted.
func (s *Set) CloseAll() { s.Each((*Tunnel).Close) }

// Shutdown refuses new tunnels, waits for the open ones to end until ctx is done,
// then closes whatever is left and returns ctx.Err() (nil if all ended by themselves).
func (s *Set) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if len(s.open) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		s.CloseAll()
		return ctx.Err()
	}
}

// Open registers a new tunnel with no sides yet (a door opens it before it
// dials, so that a shutdown closes what the dial returns). It fails once
// Shutdown has begun. The caller must call Done when the tunnel ends.
func (s *Set) Open() (*Tunnel, error) {
	t := &Tunnel{set: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, ErrShuttingDown
	}
	s.open[t] = struct{}{}
	s.accepted.Add(1)
	return t, nil
}

// Relay opens a tunnel between client and upstream, relays it (see
// Tunnel.Relay) and ends it. When the set is shutting down it closes both
// connections and returns ErrShuttingDown.
func (s *Set) Relay(client, upstream net.Conn, prefix []byte, idle time.Duration) (in, out int64, err error) {
	t, err := s.Open()
	if err != nil {
		_ = client.Close()
		_ = upstream.Close()
		return 0, 0, err
	}
	defer t.Done()
	if !t.SetClient(client) || !t.SetUpstream(upstream) {
		_ = upstream.Close()
		return 0, 0, net.ErrClosed
	}
	in, out = t.Relay(prefix, idle)
	return in, out, nil
}

// remove unregisters t (idempotent).
func (s *Set) remove(t *Tunnel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.open[t]; !ok {
		return
	}
	delete(s.open, t)
	if len(s.open) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// Tunnel is one tracked tunnel: a client side and an upstream side, either of
// which may be set later than Open (the upstream is dialed, the client
// hijacked) and closed from any goroutine.
type Tunnel struct {
	set      *Set
	closed   atomic.Bool
	mu       sync.Mutex
	client   net.Conn // under mu
	upstream net.Conn // under mu; nil while the door has none (inspection, a dial to come)
	run      *run     // under mu; set by Start
}

// SetClient sets the client side; it fails (and closes c) if the tunnel was closed.
func (t *Tunnel) SetClient(c net.Conn) bool { return t.set1(&t.client, c) }

// SetUpstream sets the upstream side; it fails (and closes c) if the tunnel was closed.
func (t *Tunnel) SetUpstream(c net.Conn) bool { return t.set1(&t.upstream, c) }

func (t *Tunnel) set1(side *net.Conn, c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		_ = c.Close()
		return false
	}
	*side = c
	return true
}

// Client returns the client side (nil before SetClient).
func (t *Tunnel) Client() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.client
}

// HasUpstream reports whether the upstream side is set.
func (t *Tunnel) HasUpstream() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.upstream != nil
}

// DropUpstream closes the upstream side, if any, keeping the client side open.
func (t *Tunnel) DropUpstream() {
	t.mu.Lock()
	up := t.upstream
	t.upstream = nil
	t.mu.Unlock()
	if up != nil {
		_ = up.Close()
	}
}

// Close closes both sides (idempotent, safe from any goroutine). The tunnel
// stays in its set until Done.
func (t *Tunnel) Close() {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return
	}
	c, up, r := t.client, t.upstream, t.run
	t.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if up != nil {
		_ = up.Close()
	}
	if r != nil { // parked directions have no goroutine to see the close
		for _, h := range []*half{&r.up, &r.down} {
			if t.set.parker.Take(&h.spot) {
				r.ended(h)
			}
		}
	}
}

// Done closes the tunnel and removes it from its set (idempotent).
func (t *Tunnel) Done() {
	t.Close()
	t.set.remove(t)
}

// halfCloser is a connection whose write side can be shut on its own.
type halfCloser interface{ CloseWrite() error }

// noIdleRound is how long one copy round lasts when there is no idle timeout.
const noIdleRound = time.Hour

// hotWait is how long a direction waits for bytes on its goroutine before it
// parks (where it can): a busy tunnel keeps its goroutines, an idle one gives
// them up, as internal/h1 does with an idle connection.
const hotWait = 100 * time.Millisecond

// Relay copies bytes both ways until both directions ended, the tunnel was
// idle for idle (no byte either way; detected within 1.5×idle; 0 means never),
// or it was closed, then closes it. prefix is sent upstream first (client bytes
// read before the tunnel began). An end of stream from one side is passed to
// the other as a half-close (CloseWrite) when that side supports it. It returns
// the bytes relayed client→upstream (in, including prefix) and
// upstream→client (out). Both sides must be set; the idle timeout relies on
// read deadlines.
func (t *Tunnel) Relay(prefix []byte, idle time.Duration) (in, out int64) {
	ch := make(chan [2]int64, 1)
	t.Start(prefix, idle, func(in, out int64) { ch <- [2]int64{in, out} })
	r := <-ch
	return r[0], r[1]
}

// Start is Relay without waiting: it sends prefix, starts the relay and
// returns; done is called once, with the byte counts, after the tunnel ended
// and was closed (on whichever goroutine ended it). While both sides are bare
// TCP sockets on Linux, a direction with no bytes for a moment parks: no
// goroutine waits for it, the Set's parker (one epoll instance) starts one
// again when bytes, an end of stream or an error arrive, so an idle tunnel
// holds its sockets and a few hundred bytes.
func (t *Tunnel) Start(prefix []byte, idle time.Duration, done func(in, out int64)) {
	t.mu.Lock()
	client, upstream := t.client, t.upstream
	t.mu.Unlock()
	if client == nil || upstream == nil || t.closed.Load() {
		t.Close()
		done(0, 0)
		return
	}
	var in int64
	if len(prefix) > 0 {
		n, err := upstream.Write(prefix)
		in = int64(n)
		if err != nil {
			t.Close()
			done(in, 0)
			return
		}
	}
	r := &run{t: t, idle: idle, done: done}
	r.left.Store(2)
	start := time.Now().UnixNano()
	r.up = half{r: r, src: client, dst: upstream, other: &r.down}
	r.down = half{r: r, src: upstream, dst: client, other: &r.up}
	r.up.n.Store(in)
	for _, h := range []*half{&r.up, &r.down} {
		h.last.Store(start)
		h.rc = rawConn(h.src)
		if h.rc != nil {
			h.out = spliceConn(h.dst)
		}
		h.wait = readWaiter(h.src)
	}
	t.mu.Lock()
	t.run = r
	t.mu.Unlock()
	for _, h := range []*half{&r.up, &r.down} {
		// parked at once where it can: the parker wakes it if bytes wait
		if h.rc == nil || !r.park(h) {
			go r.pipe(h)
		}
	}
}

// run is a relaying tunnel: its two directions and what ends it.
type run struct {
	t        *Tunnel
	idle     time.Duration
	done     func(in, out int64)
	left     atomic.Int32 // directions not ended yet
	up, down half         // client→upstream, upstream→client
}

// half is one direction of a run.
type half struct {
	r        *run
	src, dst net.Conn
	other    *half
	rc       syscall.RawConn // src's socket, nil when it cannot park
	out      syscall.RawConn // dst's socket when both are sockets that splice (Linux), else nil
	pipe     *splicePipe     // while bytes flow on a splicing direction: its pipe; only h's goroutine uses it
	wait     func() error    // readWaiter(src)
	n        atomic.Int64    // bytes relayed
	last     atomic.Int64    // unix nanoseconds of the last progress seen
	spot     park.Spot       // its place in the Set's parker
}

// ended records that h ended; the last direction closes the tunnel and reports.
func (r *run) ended(*half) {
	if r.left.Add(-1) == 0 {
		r.t.Close()
		r.done(r.up.n.Load(), r.down.n.Load())
	}
}

// idleFor reports whether neither direction moved a byte for r.idle at now.
func (r *run) idleFor(now int64) bool {
	return r.idle > 0 && now-r.up.last.Load() > int64(r.idle) && now-r.down.last.Load() > int64(r.idle)
}

// round is how long one wait for bytes lasts before the idle check.
func (r *run) round() time.Duration {
	if r.idle <= 0 {
		return noIdleRound
	}
	return r.idle / 2
}

// spliceBurst bounds how long one copy may wait for more bytes once data flows:
// past it the copy ends, giving its splice pipe back, and the tunnel waits for the
// next bytes with readWaiter, which holds no pipe.
const spliceBurst = time.Second

// parkBurst is spliceBurst for a direction that can park.
const parkBurst = 100 * time.Millisecond

// pipe copies h.src to h.dst in rounds (a read deadline ends each round) so
// that activity can be observed while the copy splices. Only read deadlines are
// used: a write deadline could cut a splice with bytes still in its pipe. When src
// can be watched without reading (readWaiter), each round first waits for bytes
// without a splice pipe, then copies in bursts (spliceBurst) for as long as
// each burst moves bytes, so an idle tunnel holds 2 fds (its sockets) instead
// of 6; when src can park, a burst that moved nothing or a wait that saw no
// byte for hotWait parks h and the goroutine ends.
func (r *run) pipe(h *half) {
	t := r.t
	round := r.round()
	burst := min(round, spliceBurst)
	if h.rc != nil {
		// a direction that can park copies in short bursts, so that a
		// tunnel that fell silent soon holds neither goroutine nor pipe
		burst = min(round, parkBurst)
	}
	flowing := false // the last copy moved bytes: copy on without a wait
	for {
		var n int64
		var err error
		if flowing {
			_ = h.src.SetReadDeadline(time.Now().Add(burst))
		} else {
			wait := round
			if h.rc != nil {
				wait = min(round, hotWait)
			}
			_ = h.src.SetReadDeadline(time.Now().Add(wait))
			if h.wait != nil {
				if err = h.wait(); err == nil {
					_ = h.src.SetReadDeadline(time.Now().Add(burst))
				}
			}
		}
		if err == nil {
			n, err = h.copy()
		}
		h.n.Add(n)
		now := time.Now().UnixNano()
		flowing = n > 0
		if flowing {
			h.last.Store(now)
		}
		if err == nil { // EOF from src: pass the half-close on
			h.dropPipe()
			if hc, ok := h.dst.(halfCloser); ok {
				_ = hc.CloseWrite()
			} else {
				t.Close()
			}
			r.ended(h)
			return
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || t.closed.Load() || r.idleFor(now) {
			h.dropPipe()
			t.Close()
			r.ended(h)
			return
		}
		if flowing {
			// The burst's deadline passed while bytes still came: the copy
			// goes on with the same pipe and goroutine. Parking here, as
			// this loop did at every burst's end, cost a busy direction a
			// new goroutine and pipe ten times a second, and under load a
			// wait for the parker's thread each time.
			continue
		}
		if h.rc != nil {
			h.dropPipe() // a parked direction holds no pipe (and may wake on another goroutine at once)
			if r.park(h) {
				return // the parker starts pipe(h) again when src is readable
			}
		}
	}
}

// copy copies h.src to h.dst until src's end of stream (nil error), an
// error or src's read deadline. Between two bare TCP sockets on Linux it
// splices through a pipe h keeps until it parks or ends (spliceCopy), else
// (or when no pipe can be made) it is io.Copy.
func (h *half) copy() (int64, error) {
	if h.out != nil {
		if h.pipe == nil {
			if p, err := newSplicePipe(); err == nil {
				h.pipe = p
			}
		}
		if h.pipe != nil {
			return spliceCopy(h.out, h.rc, h.pipe)
		}
	}
	return io.Copy(h.dst, h.src)
}

// dropPipe closes h's splice pipe, if it has one.
func (h *half) dropPipe() {
	if h.pipe != nil {
		h.pipe.close()
		h.pipe = nil
	}
}
