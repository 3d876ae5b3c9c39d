//go:build !linux

package h1

import "net"

// swapNotSent does nothing here: ReadFromConn's kernel copy, and the reason
// for the limit, are Linux's.
func swapNotSent(*net.TCPConn, int) (int, bool) { return 0, false }
