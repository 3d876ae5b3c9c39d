//go:build amd64 || arm64

package filter

// prefetch asks the CPU to start loading the cache line holding *p, so that
// the lines of a bucket arrive together instead of one after another.
//
//go:noescape
func prefetch(p *byte)
