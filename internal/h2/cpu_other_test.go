//go:build !unix

package h2

// cpuTime reports nothing where getrusage is missing.
func cpuTime() int64 { return 0 }
