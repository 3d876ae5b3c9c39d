//go:build !amd64 && !arm64

package filter

// prefetch is a no-op where no prefetch instruction is wired up.
func prefetch(*byte) {}
