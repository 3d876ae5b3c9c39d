//go:build !unix

package upstream

// cpuTime reports nothing where getrusage is missing.
func cpuTime() int64 { return 0 }
