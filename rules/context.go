package rules

import "context"

type verdictKey struct{}

// WithVerdict returns ctx carrying the verdict decided for a request, so that the
// parts after the door (the cache, the upstream transport) can act on it.
func WithVerdict(ctx context.Context, v Verdict) context.Context {
	return context.WithValue(ctx, verdictKey{}, v)
}

// VerdictFrom returns the verdict WithVerdict put in ctx, or the one a context
// type of a door carries itself (see IsVerdictKey).
func VerdictFrom(ctx context.Context) (Verdict, bool) {
	switch v := ctx.Value(verdictKey{}).(type) {
	case Verdict:
		return v, true
	case *Verdict:
		return *v, true
	}
	return Verdict{}, false
}

// IsVerdictKey reports whether key is the one VerdictFrom asks a context's
// Value for. A door's own context type may answer it with a *Verdict that
// does not change afterwards: the same as WithVerdict without its two
// allocations.
func IsVerdictKey(key any) bool {
	_, ok := key.(verdictKey)
	return ok
}
