//go:build !linux

package forward

import (
	"errors"
	"net"
	"net/netip"
)

// originalDst is only available on Linux (netfilter's SO_ORIGINAL_DST).
func originalDst(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("intercept mode needs Linux (SO_ORIGINAL_DST)")
}
