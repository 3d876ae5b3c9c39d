//go:build !linux

package tunnel

import (
	"net"
	"syscall"
)

// rawConn is nil off Linux: directions do not park.
func rawConn(net.Conn) syscall.RawConn { return nil }

// parker parks nothing off Linux: a direction waits on its goroutine.
type parker struct{}

func (*parker) park(*half) bool { return false }
func (*parker) take(*half) bool { return false }

// canPark is true where directions park.
const canPark = false

func parkedLen(*parker) int { return 0 }
