//go:build amd64 || arm64

package filter

// prefetch asks the CPU to start loading the four cache lines from p on
// (prefetches are hints: past the end of p's memory they do nothing), so
// that the lines of a sub-bucket arrive together instead of one after
// another.
//
//go:noescape
func prefetch(p *byte)
