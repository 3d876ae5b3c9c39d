package tunnel

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// rawConn returns src's socket when src is a bare *net.TCPConn (a wrapper may
// hold buffered bytes the kernel does not see), else nil.
func rawConn(src net.Conn) syscall.RawConn {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// parker holds the parked directions of a Set's idle tunnels: their sockets
// sit in one epoll instance (beside Go's own registration of them), watched
// by one goroutine that runs while anything is parked and restarts a
// direction's relay when its socket becomes readable. The same goroutine
// closes the tunnels that stayed idle, checking every parked direction at
// the shortest idle round among them (no timer per tunnel).
type parker struct {
	mu     sync.Mutex
	epfd   int
	on     bool // the loop runs on epfd
	next   uint64
	parked map[uint64]*half
	tick   time.Duration // how often the loop checks idleness; 0: no idle timeout parked
}

// park puts h (whose src had no byte for a moment) in the epoll set; it
// reports false when h cannot park (the tunnel closed, a failed syscall),
// and h's goroutine goes on waiting instead.
func (p *parker) park(h *half) bool {
	r := h.r
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.t.closed.Load() {
		return false
	}
	if !p.on {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return false
		}
		if p.parked == nil {
			p.parked = make(map[uint64]*half)
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
	cerr := h.rc.Control(func(fd uintptr) {
		// a direction parked before stays in the set, disarmed (one-shot)
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if err == syscall.EEXIST {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if cerr != nil || err != nil {
		return false
	}
	h.key = key
	p.parked[key] = h
	if r.idle > 0 && (p.tick == 0 || r.round() < p.tick) {
		p.tick = r.round()
	}
	return true
}

// take removes h from the parked set, reporting whether it was parked: the
// caller then ends it (it has no goroutine).
func (p *parker) take(h *half) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unpark(h)
}

// unpark is take under p.mu.
func (p *parker) unpark(h *half) bool {
	if h.key == 0 || p.parked[h.key] != h {
		return false
	}
	delete(p.parked, h.key)
	h.key = 0
	return true
}

// maxParkWait is the longest the parker's loop waits on its epoll instance.
const maxParkWait = 250 * time.Millisecond

// loop waits on epfd and wakes the parked directions whose socket is
// readable, closes the idle tunnels every tick, and closes epfd and ends
// when nothing is parked.
func (p *parker) loop(epfd int) {
	evs := make([]syscall.EpollEvent, 64)
	var lastCheck time.Time
	for {
		p.mu.Lock()
		tick := p.tick
		p.mu.Unlock()
		wait := maxParkWait // a shorter tick parked meanwhile is seen this soon
		if tick > 0 {
			wait = min(wait, max(time.Until(lastCheck.Add(tick)), time.Millisecond))
		}
		n, err := syscall.EpollWait(epfd, evs, int(wait.Milliseconds()))
		if err != nil {
			n = 0 // EINTR
		}
		var woken, idle []*half
		p.mu.Lock()
		if p.tick > 0 && time.Since(lastCheck) >= p.tick {
			lastCheck = time.Now()
			for _, h := range p.parked {
				if h.r.expire() {
					idle = append(idle, h)
				}
			}
		}
		for _, ev := range evs[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if h := p.parked[key]; h != nil && p.unpark(h) {
				woken = append(woken, h)
			}
		}
		exit := len(p.parked) == 0
		if exit {
			_ = syscall.Close(epfd)
			p.on, p.tick = false, 0
		}
		p.mu.Unlock()
		for _, h := range woken {
			h.r.wake(h)
		}
		for _, h := range idle {
			h.r.t.Close() // ends h (take) and the tunnel
		}
		if exit {
			return
		}
	}
}

// canPark is true where directions park.
const canPark = true

// parkedLen is how many directions p holds.
func parkedLen(p *parker) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}
