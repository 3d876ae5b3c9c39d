//go:build unix

package upstream

import "syscall"

// canDeferWrite: connReader may write a pending head inside RawConn.Read's
// callback and read the socket itself (readFD).
const canDeferWrite = true

// readFD reads from a socket descriptor.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
