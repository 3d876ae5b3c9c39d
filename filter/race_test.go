//go:build race

package filter

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of pooled code (gobwas/glob matching) are not exact.
const raceEnabled = true
