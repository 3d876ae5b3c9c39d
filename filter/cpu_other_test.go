//go:build !unix

package filter

import "time"

// cpuTime reports nothing where getrusage is missing.
func cpuTime() time.Duration { return 0 }
