//go:build !linux

package engine

import (
	"errors"
	"net"
)

// listenTCP opens a TCP listener on addr; a congestion control can be chosen
// on Linux only.
func listenTCP(addr, congestion string) (net.Listener, error) {
	if congestion != "" {
		return nil, errors.New("tcp_congestion is supported on Linux only")
	}
	return net.Listen("tcp", addr)
}
