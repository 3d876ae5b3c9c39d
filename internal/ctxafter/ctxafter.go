// Package ctxafter runs a function when a context ends, as context.AfterFunc
// does, but through the context's own AfterFunc method when it has one.
//
// internal/h1's request context has such a method: a function registered
// with it costs one small allocation and runs when the request ends, where
// context.AfterFunc costs five (its context, the registration and the stop
// function) and a goroutine when a context type in between hides the method.
// Context types that wrap a request's context for its values (a door's
// exchange, relay's outbound context) implement AfterFunc with Pass, so
// that the method stays visible to whoever derives from them.
package ctxafter

import "context"

// afterFuncer is a context with its own AfterFunc, as the context package
// recognises it: f runs once the context is done, and stop reports whether
// it unregistered f before f ran.
type afterFuncer interface {
	AfterFunc(f func()) (stop func() bool)
}

// Func arranges for f to run once ctx is done and returns the function that
// stops it (true: f will not run), as context.AfterFunc does. With ctx's own
// AfterFunc method, when it has one, f runs as that method runs it (on
// internal/h1's request context: when the request ends, in the goroutine
// that ends it), so f must not block. Func returns nil when ctx can never
// be done (no AfterFunc method and a nil Done).
func Func(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(afterFuncer); ok {
		return a.AfterFunc(f)
	}
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, f)
}

// Pass is Func for the AfterFunc method of a context type that wraps ctx
// (for its values, with no end of its own): it passes f on to ctx's end,
// and never returns nil (the context package calls the stop function it
// gets); for a ctx that can never be done, stop reports true.
func Pass(ctx context.Context, f func()) (stop func() bool) {
	if stop = Func(ctx, f); stop == nil {
		stop = never
	}
	return stop
}

func never() bool { return true }
