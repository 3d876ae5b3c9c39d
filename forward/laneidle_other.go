//go:build !linux

package forward

import "net"

// idleReadable is false off Linux: a kept upstream connection is reused
// without looking for unsolicited bytes first (bytes already read past a
// response still make the lane drop it).
func idleReadable(net.Conn) bool { return false }
