package h2

import (
	"context"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/ctxafter"
)

// streamCtx is a stream's request context: the connection's values, done
// when the stream ends (its answer is complete, it is reset, or the
// connection ends), as a context.WithCancel of a context that never ends
// would be. It lives in the stream and costs nothing until asked: its
// channel is made at the first Done, and its AfterFunc (which
// internal/ctxafter and the context package use before anything else)
// keeps the function in the stream, where context.AfterFunc on a
// context.WithCancel makes the channel, a context, a map of children and
// the stop function: an upstream request registers one per stream.
type streamCtx struct {
	context.Context // the connection's values; never done by itself

	ended atomic.Bool
	done  atomic.Value // chan struct{}: made at the first Done, or closedChan
	fns   ctxafter.Funcs
}

// closedChan is the Done of a context that ended before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done implements context.Context.
func (c *streamCtx) Done() <-chan struct{} {
	if d, ok := c.done.Load().(chan struct{}); ok {
		return d
	}
	if c.ended.Load() {
		return closedChan
	}
	if d := make(chan struct{}); c.done.CompareAndSwap(nil, d) {
		return d
	}
	return c.done.Load().(chan struct{}) // cancel's closedChan, or another Done's
}

// Err implements context.Context.
func (c *streamCtx) Err() error {
	if c.ended.Load() {
		return context.Canceled
	}
	return nil
}

// String names the context (for fmt).
func (c *streamCtx) String() string { return "h2 stream context" }

// AfterFunc runs f once c is done (in a goroutine of its own when it is
// already) and returns a function that unregisters f, reporting whether it
// did so before f ran. The context package uses it for contexts derived
// from c, as it uses a cancelCtx's; f runs in the goroutine that ends the
// stream, which may hold the connection's lock: f must not block (the
// context package's and internal/upstream's do not).
func (c *streamCtx) AfterFunc(f func()) func() bool { return c.fns.Add(f) }

// cancel ends c: its channel closes, Err says context.Canceled, and the
// functions registered with AfterFunc run before cancel returns. Later
// calls do nothing.
func (c *streamCtx) cancel() {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	if !c.done.CompareAndSwap(nil, closedChan) {
		close(c.done.Load().(chan struct{}))
	}
	c.fns.Run()
}
