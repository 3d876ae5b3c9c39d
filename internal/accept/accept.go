// Package accept is the accept loop every listener of Portcullis goes through.
//
// A Listener wraps a bound net.Listener: its Accept never returns a temporary
// error. When accept(2) fails for a reason that may pass — EMFILE and ENFILE
// (out of descriptors), ENOBUFS and ENOMEM, ECONNABORTED, or any error but the
// listener being closed or broken — it logs once per episode, backs off (5 ms
// doubling to 1 s, as net/http does) and tries again, so a burst of
// connections that exhausts the descriptors never stops a listener for good.
// A Watch records the listeners that cannot accept right now, for /readyz.
//
// Limit bounds the connections a listener holds open, globally and per
// client address (the doors' max_conns and max_conns_per_client).
package accept

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Back-off bounds between failed accepts, as net/http's.
const (
	minDelay = 5 * time.Millisecond
	maxDelay = time.Second
)

// Watch is the set of listeners that cannot accept right now. The zero
// value is empty and ready to use; it is safe for concurrent use.
type Watch struct {
	mu      sync.Mutex
	failing map[*Listener]failure
}

type failure struct {
	since time.Time
	err   error
}

func (w *Watch) set(l *Listener, err error, since time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		delete(w.failing, l)
		return
	}
	if w.failing == nil {
		w.failing = map[*Listener]failure{}
	}
	w.failing[l] = failure{since: since, err: err}
}

// Err returns nil when every watched listener accepts, else an error naming
// each one that cannot, with the accept error and since when.
func (w *Watch) Err() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failing) == 0 {
		return nil
	}
	var msgs []string
	for l, f := range w.failing {
		msgs = append(msgs, fmt.Sprintf("listener %s cannot accept connections since %s: %v", l.name, f.since.UTC().Format(time.RFC3339), f.err))
	}
	slices.Sort(msgs)
	return errors.New(strings.Join(msgs, "; "))
}

// Listener is a net.Listener whose Accept retries, with back-off, every
// error but the listener being closed. Create it with New.
type Listener struct {
	net.Listener
	name  string
	log   *slog.Logger
	watch *Watch

	done      chan struct{}
	closeOnce sync.Once
}

// New returns ln with the accept loop of the package. name identifies the
// listener in log lines and in watch ("forward 127.0.0.1:3128"); log and
// watch may be nil. When ln already is a *Listener it is returned as is.
func New(ln net.Listener, name string, log *slog.Logger, watch *Watch) net.Listener {
	if l, ok := ln.(*Listener); ok {
		return l
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, name: name, log: log, watch: watch, done: make(chan struct{})}
}

// Accept implements net.Listener: it returns the next connection, or the
// error that ends the listener (net.ErrClosed after Close). Any other error
// is logged once per episode, recorded in the Watch while it lasts, and
// retried after a back-off.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	var since time.Time
	var fails int
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if fails > 0 {
				l.watch.set(l, nil, time.Time{})
				l.log.Warn("listener accepting connections again", "listener", l.name, "failed_accepts", fails, "after", time.Since(since).Round(time.Millisecond))
			}
			return c, nil
		}
		if l.closed() {
			return nil, net.ErrClosed
		}
		if permanent(err) {
			if fails > 0 {
				l.watch.set(l, nil, time.Time{})
			}
			return nil, err
		}
		if fails == 0 {
			since = time.Now()
			l.watch.set(l, err, since)
			l.log.Error("listener cannot accept connections, retrying with back-off", "listener", l.name, "err", err)
		}
		fails++
		delay = min(max(2*delay, minDelay), maxDelay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			l.watch.set(l, nil, time.Time{})
			return nil, net.ErrClosed
		}
	}
}

// Close implements net.Listener: it closes the listener and ends a back-off
// in progress.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.watch.set(l, nil, time.Time{})
	})
	return l.Listener.Close()
}

func (l *Listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// permanent reports whether err means the listener itself is gone or broken
// (closed, not a socket, not listening), which retrying cannot mend.
func permanent(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EBADF, syscall.EINVAL, syscall.ENOTSOCK, syscall.EOPNOTSUPP, syscall.EFAULT:
			return true
		}
	}
	return false
}
