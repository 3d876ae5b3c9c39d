package ctxafter

import (
	"context"
	"testing"
	"time"
)

// ownCtx is a context with an AfterFunc of its own, as internal/h1's
// request context: it keeps the functions registered and runs them when
// cancel is called.
type ownCtx struct {
	context.Context
	done chan struct{}
	fns  []func()
}

func (c *ownCtx) Done() <-chan struct{} { return c.done }

func (c *ownCtx) AfterFunc(f func()) func() bool {
	i := len(c.fns)
	c.fns = append(c.fns, f)
	return func() bool {
		if c.fns[i] == nil {
			return false
		}
		c.fns[i] = nil
		return true
	}
}

func (c *ownCtx) cancel() {
	close(c.done)
	for i, f := range c.fns {
		if f != nil {
			c.fns[i] = nil
			f()
		}
	}
}

// Func registers with a context's own AfterFunc: f runs when it ends, and
// stop before that unregisters f.
func TestOwnAfterFunc(t *testing.T) {
	ctx := &ownCtx{Context: context.Background(), done: make(chan struct{})}
	ran, stopped := 0, 0
	Func(ctx, func() { ran++ })
	stop := Func(ctx, func() { stopped++ })
	if len(ctx.fns) != 2 {
		t.Fatalf("%d functions registered with the context's AfterFunc, want 2", len(ctx.fns))
	}
	if !stop() {
		t.Fatal("stop before the end reported that f had run")
	}
	ctx.cancel()
	if ran != 1 || stopped != 0 {
		t.Fatalf("f ran %d times and the stopped one %d times, want 1 and 0", ran, stopped)
	}
}

// Without an AfterFunc method Func is context.AfterFunc: f runs in a
// goroutine when the context ends; a context that never ends gives nil.
func TestPlainContext(t *testing.T) {
	if stop := Func(context.Background(), func() { t.Error("f ran for a context that never ends") }); stop != nil {
		t.Fatal("Func returned a stop function for a context that never ends")
	}
	ctx, cancel := context.WithCancel(context.Background())
	fired := make(chan struct{})
	stop := Func(ctx, func() { close(fired) })
	cancel()
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("f did not run when the context ended")
	}
	if stop() {
		t.Fatal("stop after f ran reported that it stopped f")
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if stop := Func(ctx2, func() { t.Error("a stopped f ran") }); !stop() {
		t.Fatal("stop before the end did not stop f")
	}
	cancel2()
}

// Pass never returns nil: for a context that never ends, stop reports that
// f will not run.
func TestPass(t *testing.T) {
	stop := Pass(context.Background(), func() { t.Error("f ran for a context that never ends") })
	if stop == nil || !stop() {
		t.Fatal("Pass gave no stop function, or one reporting that f ran, for a context that never ends")
	}
	ctx := &ownCtx{Context: context.Background(), done: make(chan struct{})}
	ran := 0
	Pass(ctx, func() { ran++ })
	ctx.cancel()
	if ran != 1 {
		t.Fatalf("f ran %d times, want 1", ran)
	}
}
