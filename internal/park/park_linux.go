package park

import (
	"sync"
	"syscall"
	"time"
)

// Set holds parked sockets. Its zero value is ready to use; it must not be
// copied after first use.
type Set struct {
	mu     sync.Mutex
	epfd   int
	on     bool // the loop runs on epfd
	next   uint64
	parked map[uint64]entry
	tick   time.Duration // how often the loop asks Expired; 0: never
	parks  uint64        // sockets parked since the set was made
}

type entry struct {
	spot *Spot
	s    Sleeper
}

// CanPark is true where sockets park.
const CanPark = true

// Park puts rc's socket in the set, to wake s when it becomes readable, and
// asks s.Expired at least every tick while it is parked (0: s has no
// deadline of its own). It reports false when the socket cannot park
// (s.Expired is already true, a failed syscall): the caller then waits for
// it another way. A socket parked before by this set may park again.
//
// Whoever ends a sleeper from outside (a close, a shutdown) makes Expired
// true first and then calls Take: either Park sees Expired or Take finds
// the socket parked.
func (p *Set) Park(spot *Spot, rc syscall.RawConn, s Sleeper, tick time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if spot.key != 0 || s.Expired(time.Now()) {
		return false
	}
	if !p.on {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return false
		}
		if p.parked == nil {
			p.parked = make(map[uint64]entry)
		}
		p.epfd, p.on = fd, true
		go p.loop(fd)
	}
	p.next++
	key := p.next
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(key)), Pad: int32(uint32(key >> 32)),
	}
	var err error
	cerr := rc.Control(func(fd uintptr) {
		// a socket parked before stays in the set, disarmed (one-shot)
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if err == syscall.EEXIST {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if cerr != nil || err != nil {
		return false
	}
	spot.key = key
	p.parked[key] = entry{spot, s}
	p.parks++
	if tick > 0 && (p.tick == 0 || tick < p.tick) {
		p.tick = tick
	}
	return true
}

// Take removes spot's socket from the set, reporting whether it was
// parked: the caller then owns it again (no Wake or Expire will come).
func (p *Set) Take(spot *Spot) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unpark(spot)
}

// unpark is Take under p.mu.
func (p *Set) unpark(spot *Spot) bool {
	if spot.key == 0 || p.parked[spot.key].spot != spot {
		return false
	}
	delete(p.parked, spot.key)
	spot.key = 0
	return true
}

// Len returns how many sockets are parked.
func (p *Set) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// Parks returns how many times a socket parked since the set was made.
func (p *Set) Parks() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parks
}

// maxWait is the longest the loop waits on its epoll instance.
const maxWait = 250 * time.Millisecond

// loop waits on epfd and wakes the sleepers whose socket is readable, asks
// every sleeper whether it expired at each tick, and closes epfd and ends
// when nothing was parked for a whole wait.
func (p *Set) loop(epfd int) {
	evs := make([]syscall.EpollEvent, 128)
	var lastCheck time.Time
	var woken, expired []Sleeper
	wasEmpty := false
	for {
		p.mu.Lock()
		tick := p.tick
		p.mu.Unlock()
		wait := maxWait // a shorter tick parked meanwhile is seen this soon
		if tick > 0 {
			wait = min(wait, max(time.Until(lastCheck.Add(tick)), time.Millisecond))
		}
		n, err := syscall.EpollWait(epfd, evs, int(wait.Milliseconds()))
		if err != nil {
			n = 0 // EINTR
		}
		p.mu.Lock()
		if p.tick > 0 && time.Since(lastCheck) >= p.tick {
			lastCheck = time.Now()
			for _, e := range p.parked {
				if e.s.Expired(lastCheck) && p.unpark(e.spot) {
					expired = append(expired, e.s)
				}
			}
		}
		for _, ev := range evs[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if e, ok := p.parked[key]; ok && p.unpark(e.spot) {
				woken = append(woken, e.s)
			}
		}
		// The loop outlives an empty set by one wait (maxWait), so that a
		// socket parking again soon (a busy tunnel between bursts, a kept
		// connection between requests) finds the epoll instance still there
		// instead of making a new one and a new goroutine.
		empty := len(p.parked) == 0
		if empty {
			p.tick = 0
		}
		exit := empty && wasEmpty
		wasEmpty = empty
		if exit {
			_ = syscall.Close(epfd)
			p.on = false
		}
		p.mu.Unlock()
		for i, s := range woken {
			s.Wake()
			woken[i] = nil
		}
		for i, s := range expired {
			s.Expire()
			expired[i] = nil
		}
		woken, expired = woken[:0], expired[:0]
		if exit {
			return
		}
	}
}
