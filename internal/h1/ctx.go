package h1

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/ctxafter"
)

// reqCtx is a request's context: the connection's values and deadline,
// done when the request ends or its client goes away, as a
// context.WithCancel of the connection's context would be. It lives in the
// stream and costs nothing until someone asks whether it is done (Done,
// Err, a derived context, context.AfterFunc): only then is its channel
// made and, once the request body is read, the client watched by a
// background read (connReader.arm). A handler that never asks, such as a
// cache hit, costs neither. It is used when the connection's context
// cannot end by itself (its Done is nil); else the stream takes a
// context.WithCancel.
type reqCtx struct {
	context.Context // the connection's: Deadline and Value

	st      *stream
	watched atomic.Bool
	done    atomic.Value // chan struct{}, made at the first Done
	mu      sync.Mutex
	err     error
	fns     ctxafter.Funcs // AfterFunc's, run at the cancel
}

// closedchan is the Done of a context cancelled before anyone asked.
var closedchan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done implements context.Context.
func (c *reqCtx) Done() <-chan struct{} {
	c.watch()
	if d, ok := c.done.Load().(chan struct{}); ok {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.done.Load().(chan struct{})
	if !ok {
		d = make(chan struct{})
		if c.err != nil {
			d = closedchan
		}
		c.done.Store(d)
	}
	return d
}

// Err implements context.Context.
func (c *reqCtx) Err() error {
	c.watch()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// String names the context (for fmt).
func (c *reqCtx) String() string { return "h1 request context" }

// AfterFunc runs f once c is done (at once if it is) and returns a
// function that unregisters f, reporting whether it did so before f ran.
// The context package uses it for contexts derived from c (so that a
// derived context needs no goroutine watching c), as it uses a
// cancelCtx's.
func (c *reqCtx) AfterFunc(f func()) func() bool {
	c.watch()
	return c.fns.Add(f)
}

// cancel ends c (the request ended or its client went away): its channel
// closes, Err says context.Canceled, and the functions registered with
// AfterFunc run (derived contexts end) before cancel returns.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if d, ok := c.done.Load().(chan struct{}); ok {
		close(d)
	} else {
		c.done.Store(closedchan)
	}
	c.mu.Unlock()
	c.fns.Run()
}

// watch tells the connection, once, that someone waits for c to end: the
// client is then watched while the handler runs with the body read.
func (c *reqCtx) watch() {
	if c.watched.Load() || c.watched.Swap(true) {
		return
	}
	c.st.c.cr.watch(c.st)
}
