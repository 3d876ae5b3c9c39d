// Package park holds idle sockets without a goroutine each. A parked socket
// sits in one epoll instance per Set (beside Go's own registration of it),
// watched by one goroutine that runs while anything is parked (and one wait
// longer): it wakes the socket's owner when the socket becomes readable
// (bytes, the end of the stream or an error), and asks the owners at a regular tick whether they
// are to end (an idle timeout, a shutdown), so that no timer is held per
// socket either. An idle socket then costs its owner's state and nothing
// else: no goroutine stack, no buffer, no timer.
//
// Off Linux nothing parks: Park reports false and the owner waits on a
// goroutine of its own.
package park

import "time"

// A Sleeper owns a parked socket. Its methods are called on the Set's
// goroutine: they must not block, and must not call the Set.
type Sleeper interface {
	// Wake is called when the socket is readable, at its end of stream or
	// failed. The socket is no longer parked: the sleeper owns it again.
	Wake()
	// Expired is asked at the Set's ticks, with the Set's lock held, and
	// at Park; it reports whether the sleeper is to end (its idle time
	// passed, its owner is closing). It must be quick.
	Expired(now time.Time) bool
	// Expire is called, outside the Set's lock, after Expired reported
	// true at a tick. The socket is no longer parked: the sleeper ends it.
	Expire()
}

// Spot is a sleeper's place in a Set; its zero value is not parked. A
// socket's owner keeps one per socket it may park.
type Spot struct {
	key uint64 // under the Set's lock; 0: not parked
}
