//go:build !linux

package park

import (
	"syscall"
	"time"
)

// Set parks nothing off Linux: its owners wait on goroutines of their own.
type Set struct{}

// CanPark is true where sockets park.
const CanPark = false

// Park reports false: nothing parks off Linux.
func (*Set) Park(*Spot, syscall.RawConn, Sleeper, time.Duration) bool { return false }

// Take reports false: nothing is parked.
func (*Set) Take(*Spot) bool { return false }

// Parks returns 0: nothing parks.
func (*Set) Parks() uint64 { return 0 }

// Len returns 0.
func (*Set) Len() int { return 0 }
