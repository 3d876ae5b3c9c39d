package forward

import (
	"context"
	"testing"
)

// recordCtx is a context with an AfterFunc of its own, as internal/h1's
// request context has.
type recordCtx struct {
	context.Context
	fns []func()
}

func (c *recordCtx) AfterFunc(f func()) func() bool {
	c.fns = append(c.fns, f)
	return func() bool { return true }
}

// A plain request's context upstream passes the request context's AfterFunc
// on, so that the upstream client stops its exchange when the request ends
// without context.AfterFunc's derived context and goroutine per request.
func TestExchangeCtxAfterFunc(t *testing.T) {
	rc := &recordCtx{Context: context.Background()}
	a, ok := any(&exchangeCtx{Context: rc}).(interface{ AfterFunc(func()) func() bool })
	if !ok {
		t.Fatal("exchangeCtx has no AfterFunc")
	}
	ran := false
	a.AfterFunc(func() { ran = true })
	if len(rc.fns) != 1 {
		t.Fatalf("%d functions registered with the request's context, want 1", len(rc.fns))
	}
	rc.fns[0]()
	if !ran {
		t.Fatal("the function registered is not the one given")
	}
}
