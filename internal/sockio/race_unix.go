//go:build unix && race

package sockio

import "syscall"

// Under the race detector the calls go through package syscall, whose Read
// and Write tell the detector that what was written before a write happens
// before what reads it (raw calls would make every exchange over a socket
// look like a race). Everything around them is the same.
func sysRead(fd uintptr, p []byte) (int, error) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), err
}

func sysWrite(fd uintptr, p []byte) (int, error) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), err
}
