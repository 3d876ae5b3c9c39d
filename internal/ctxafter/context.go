package ctxafter

import (
	"context"
	"sync/atomic"
)

// Context is a request's context that ends once, when End is called, as a
// context.WithCancel of a parent that never ends would: it carries the
// parent's values and deadline (the embedded Context, set before use) and
// costs nothing until someone asks whether it is done. Its channel is made
// at the first Done, and its AfterFunc (which Func and the context package
// use before anything else) keeps the function in the Context, where
// context.AfterFunc on a context.WithCancel makes the channel, a context, a
// map of children and the stop function. internal/h1's request context and
// internal/h2's stream context are one each, kept in the stream; a Context
// must not be copied once used.
type Context struct {
	context.Context // the parent: Deadline and Value; its end is not watched

	ended atomic.Bool
	done  atomic.Value // chan struct{}: made at the first Done, or closedChan
	fns   funcs
}

// closedChan is the Done of a Context that ended before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done implements context.Context.
func (c *Context) Done() <-chan struct{} {
	if d, ok := c.done.Load().(chan struct{}); ok {
		return d
	}
	if c.ended.Load() {
		return closedChan
	}
	if d := make(chan struct{}); c.done.CompareAndSwap(nil, d) {
		return d
	}
	return c.done.Load().(chan struct{}) // End's closedChan, or another Done's
}

// Err implements context.Context.
func (c *Context) Err() error {
	if c.ended.Load() {
		return context.Canceled
	}
	return nil
}

// AfterFunc runs f once c is done (in a goroutine of its own when it is
// already) and returns a function that unregisters f, reporting whether it
// did so before f ran. f runs in the goroutine that calls End, which may
// hold a lock of its own: f must not block (the context package's and
// internal/upstream's do not).
func (c *Context) AfterFunc(f func()) func() bool { return c.fns.Add(f) }

// End ends c: its channel closes, Err says context.Canceled, and the
// functions registered with AfterFunc run before End returns. Later calls
// do nothing.
func (c *Context) End() {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	if !c.done.CompareAndSwap(nil, closedChan) {
		close(c.done.Load().(chan struct{}))
	}
	c.fns.Run()
}
