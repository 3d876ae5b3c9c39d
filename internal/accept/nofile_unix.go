//go:build unix

package accept

import "syscall"

// DescriptorLimit returns the process's soft RLIMIT_NOFILE (Go raises it to
// the hard limit at start), or 0 when it cannot be read.
func DescriptorLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur)
}
