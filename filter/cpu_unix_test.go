//go:build unix

package filter

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine wall time mostly measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
