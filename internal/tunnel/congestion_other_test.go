//go:build !linux

package tunnel

import (
	"net"
	"testing"
)

// pairCC skips: a congestion control is chosen on Linux only.
func pairCC(t testing.TB, cc string) (a, b net.Conn) {
	t.Skip("congestion control is chosen on Linux only")
	return nil, nil
}
