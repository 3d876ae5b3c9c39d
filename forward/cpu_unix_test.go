//go:build unix

package forward

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the test process has used:
// per operation, a figure other processes' load on a shared machine moves far
// less than the wall clock's ns/op.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
