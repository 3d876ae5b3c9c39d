//go:build windows

package e2e

import "syscall"

// setRcvBuf sets a socket's receive buffer (SO_RCVBUF) to n bytes.
func setRcvBuf(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
