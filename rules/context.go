package rules

import "context"

type verdictKey struct{}

// WithVerdict returns ctx carrying the verdict decided for a request, so that the
// parts after the door (the cache, the upstream transport) can act on it.
func WithVerdict(ctx context.Context, v Verdict) context.Context {
	return context.WithValue(ctx, verdictKey{}, v)
}

// VerdictFrom returns the verdict WithVerdict put in ctx.
func VerdictFrom(ctx context.Context) (Verdict, bool) {
	v, ok := ctx.Value(verdictKey{}).(Verdict)
	return v, ok
}
