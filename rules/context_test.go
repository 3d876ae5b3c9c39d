package rules

import (
	"context"
	"testing"
)

// carrier is a door's own context type carrying a verdict.
type carrier struct {
	context.Context
	v Verdict
}

func (c *carrier) Value(key any) any {
	if IsVerdictKey(key) {
		return &c.v
	}
	return c.Context.Value(key)
}

// VerdictFrom reads a verdict put by WithVerdict and one a context type
// carries itself, through contexts derived from either.
func TestVerdictFrom(t *testing.T) {
	want := Verdict{Action: ActionBlock, Rule: "r1", Pool: "parents"}
	type key struct{}
	for name, ctx := range map[string]context.Context{
		"WithVerdict": WithVerdict(context.Background(), want),
		"carrier":     &carrier{Context: context.Background(), v: want},
		"derived":     context.WithValue(&carrier{Context: context.Background(), v: want}, key{}, 1),
	} {
		if v, ok := VerdictFrom(ctx); !ok || v != want {
			t.Errorf("%s: %+v, %v; want %+v", name, v, ok, want)
		}
	}
	if _, ok := VerdictFrom(context.Background()); ok {
		t.Error("a verdict in a context without one")
	}
	if IsVerdictKey(struct{}{}) {
		t.Error("IsVerdictKey of another key")
	}
}
