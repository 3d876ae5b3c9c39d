//go:build !linux

package tunnel

import "net"

// readWaiter is nil off Linux: the tunnel copies (and waits) with io.Copy alone.
func readWaiter(net.Conn) func() error { return nil }
