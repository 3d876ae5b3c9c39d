package tunnel

import "time"

// park puts h, whose src had no byte for a moment, in its Set's parker (one
// epoll instance for the Set's idle tunnels, internal/park): it reports
// false when h cannot park (the tunnel closed or went idle, a failed
// syscall), and h's goroutine goes on waiting instead.
func (r *run) park(h *half) bool {
	var tick time.Duration
	if r.idle > 0 {
		tick = r.round()
	}
	return r.t.set.parker.Park(&h.spot, h.rc, h, tick)
}

// Wake is the parker's call when a parked direction's socket is readable.
func (h *half) Wake() { go h.r.pipe(h) }

// Expired is the parker's idle check of a parked direction: it reports
// whether the tunnel is to close (idle for r.idle, or closed).
func (h *half) Expired(now time.Time) bool {
	return h.r.idleFor(now.UnixNano()) || h.r.t.closed.Load()
}

// Expire closes the tunnel of a parked direction that expired (the parker
// took it out first: it ends here).
func (h *half) Expire() {
	h.r.t.Close()
	h.r.ended(h)
}
