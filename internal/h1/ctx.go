package h1

import (
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/ctxafter"
)

// reqCtx is a request's context: the connection's values and deadline,
// done when the request ends or its client goes away, as a
// context.WithCancel of the connection's context would be. It lives in the
// stream and costs nothing until someone asks whether it is done (Done,
// Err, a derived context, context.AfterFunc): that is ctxafter.Context's
// work. The first to ask also has the client watched by a background read
// once the request body is read (connReader.arm); a handler that never
// asks, such as a cache hit, costs neither. It is used when the
// connection's context cannot end by itself (its Done is nil); else the
// stream takes a context.WithCancel.
type reqCtx struct {
	ctxafter.Context // the connection's values; ended by stream.cancel

	st      *stream
	watched atomic.Bool
}

// Done implements context.Context.
func (c *reqCtx) Done() <-chan struct{} {
	c.watch()
	return c.Context.Done()
}

// Err implements context.Context.
func (c *reqCtx) Err() error {
	c.watch()
	return c.Context.Err()
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
	return c.Context.AfterFunc(f)
}

// watch tells the connection, once, that someone waits for c to end: the
// client is then watched while the handler runs with the body read.
func (c *reqCtx) watch() {
	if c.watched.Load() || c.watched.Swap(true) {
		return
	}
	c.st.c.cr.watch(c.st)
}
