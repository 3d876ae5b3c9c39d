package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrShuttingDown is returned when a tunnel is opened after Tunnels.Shutdown began.
var ErrShuttingDown = errors.New("forward: shutting down")

// Tunnels tracks the open CONNECT tunnels of every Proxy built on it, so that a
// reload keeps them and a shutdown can wait for them and then close them. Build one
// with NewTunnels and share it across reloads. Safe for concurrent use.
type Tunnels struct {
	mu       sync.Mutex
	open     map[*tunnel]struct{}
	closing  bool
	drained  chan struct{} // closed when the last tunnel ends after Shutdown began
	accepted atomic.Int64
}

// NewTunnels returns an empty tracker.
func NewTunnels() *Tunnels {
	return &Tunnels{open: make(map[*tunnel]struct{})}
}

// Len returns the number of open tunnels.
func (t *Tunnels) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// Total returns the number of tunnels accepted since NewTunnels.
func (t *Tunnels) Total() int64 { return t.accepted.Load() }

// CloseAll closes every open tunnel now (both sides); new tunnels are still accepted.
func (t *Tunnels) CloseAll() {
	t.mu.Lock()
	list := make([]*tunnel, 0, len(t.open))
	for tn := range t.open {
		list = append(list, tn)
	}
	t.mu.Unlock()
	for _, tn := range list {
		tn.close()
	}
}

// Shutdown refuses new tunnels, waits for the open ones to end until ctx is done,
// then closes whatever is left and returns ctx.Err() (nil if all ended by themselves).
func (t *Tunnels) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.closing = true
	if len(t.open) == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.drained == nil {
		t.drained = make(chan struct{})
	}
	drained := t.drained
	t.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		t.CloseAll()
		return ctx.Err()
	}
}

// add registers tn; it fails once Shutdown has begun.
func (t *Tunnels) add(tn *tunnel) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return ErrShuttingDown
	}
	t.open[tn] = struct{}{}
	t.accepted.Add(1)
	return nil
}

// remove unregisters tn (idempotent).
func (t *Tunnels) remove(tn *tunnel) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.open[tn]; !ok {
		return
	}
	delete(t.open, tn)
	if len(t.open) == 0 && t.drained != nil {
		close(t.drained)
		t.drained = nil
	}
}

// tunnel is one CONNECT tunnel: the client and upstream sides.
type tunnel struct {
	closed   atomic.Bool
	mu       sync.Mutex
	client   net.Conn // set by attach, under mu
	upstream net.Conn // set before the hijack or by setUpstream, under mu; nil when inspecting
}

// attach sets the client side; it fails (and closes c) if the tunnel was closed.
func (tn *tunnel) attach(c net.Conn) bool { return tn.set(&tn.client, c) }

// setUpstream sets the upstream side; it fails (and closes c) if the tunnel was closed.
func (tn *tunnel) setUpstream(c net.Conn) bool { return tn.set(&tn.upstream, c) }

func (tn *tunnel) set(side *net.Conn, c net.Conn) bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.closed.Load() {
		_ = c.Close()
		return false
	}
	*side = c
	return true
}

// dropUpstream closes the upstream side, if any, keeping the client side open.
func (tn *tunnel) dropUpstream() {
	tn.mu.Lock()
	up := tn.upstream
	tn.upstream = nil
	tn.mu.Unlock()
	if up != nil {
		_ = up.Close()
	}
}

// close closes both sides (idempotent, safe from any goroutine).
func (tn *tunnel) close() {
	tn.mu.Lock()
	if tn.closed.Swap(true) {
		tn.mu.Unlock()
		return
	}
	c, up := tn.client, tn.upstream
	tn.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if up != nil {
		_ = up.Close()
	}
}

// halfCloser is a connection whose write side can be shut on its own.
type halfCloser interface{ CloseWrite() error }

// run relays bytes both ways until both directions ended, the tunnel was idle for
// idle (no byte either way; detected within 1.5×idle), or it was closed. prefix is
// sent upstream first (client bytes read before the tunnel began). It returns the
// bytes relayed client→upstream (in, including prefix) and upstream→client (out).
// The copies use io.Copy between the connections, which splices kernel-side when
// both are *net.TCPConn; see pipe for how idle tunnels avoid holding splice pipes.
func (tn *tunnel) run(prefix []byte, idle time.Duration) (in, out int64) {
	defer tn.close()
	if len(prefix) > 0 {
		n, err := tn.upstream.Write(prefix)
		in += int64(n)
		if err != nil {
			return in, 0
		}
	}
	start := time.Now().UnixNano()
	var up, down direction
	up.last.Store(start)
	down.last.Store(start)
	done := make(chan int64, 1)
	go func() {
		done <- tn.pipe(tn.upstream, tn.client, &up, &down, idle)
	}()
	out = tn.pipe(tn.client, tn.upstream, &down, &up, idle)
	in += <-done
	return in, out
}

// direction is one half of a tunnel's activity record.
type direction struct {
	last atomic.Int64 // unix nanoseconds of the last progress seen
}

// spliceBurst bounds how long one io.Copy may wait for more bytes once data flows:
// past it the copy ends, giving its splice pipe back, and the tunnel waits for the
// next bytes with readWaiter, which holds no pipe.
const spliceBurst = time.Second

// pipe copies src to dst in rounds of idle/2 (a read deadline ends each round) so
// that activity can be observed while io.Copy splices. Only read deadlines are
// used: a write deadline could cut a splice with bytes still in its pipe. When src
// can be watched without reading (readWaiter), each round first waits for bytes
// without a splice pipe, then copies until src stays silent for spliceBurst, so
// an idle tunnel holds 2 fds (its sockets) instead of 6.
func (tn *tunnel) pipe(dst, src net.Conn, self, other *direction, idle time.Duration) int64 {
	var total int64
	round := idle / 2
	burst := min(round, spliceBurst)
	wait := readWaiter(src)
	for {
		_ = src.SetReadDeadline(time.Now().Add(round))
		var n int64
		var err error
		if wait != nil {
			if err = wait(); err == nil {
				_ = src.SetReadDeadline(time.Now().Add(burst))
			}
		}
		if err == nil {
			n, err = io.Copy(dst, src)
		}
		total += n
		now := time.Now().UnixNano()
		if n > 0 {
			self.last.Store(now)
		}
		if err == nil { // EOF from src: pass the half-close on
			if hc, ok := dst.(halfCloser); ok {
				_ = hc.CloseWrite()
			} else {
				tn.close()
			}
			return total
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || tn.closed.Load() {
			tn.close()
			return total
		}
		if now-self.last.Load() > int64(idle) && now-other.last.Load() > int64(idle) {
			tn.close()
			return total
		}
	}
}
