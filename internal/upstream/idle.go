package upstream

import (
	"sync"
	"time"
)

// idlePool keeps idle connections: per destination, most recent first, and in
// one list across destinations, oldest first, for the total bound and the idle
// timeout. One timer (armed while anything is idle) closes connections idle
// for longer than the timeout; a connection past it is never handed out.
type idlePool struct {
	perHost, total int
	timeout        time.Duration

	mu     sync.Mutex
	dests  map[destKey]*idleList
	all    idleList // every idle connection, oldest at head
	timer  *time.Timer
	armed  bool
	closed int       // closeAll calls: a connection from before one is not kept
	spare  *idleList // the last destination list emptied, for the next put
}

// idleList is an intrusive doubly linked list of connections; global says
// which links (the per-destination or the global ones) it uses.
type idleList struct {
	head, tail *pconn
	n          int
	global     bool
}

func (l *idleList) links(pc *pconn) *links {
	if l.global {
		return &pc.all
	}
	return &pc.dest
}

type links struct{ prev, next *pconn }

func (l *idleList) pushBack(pc *pconn) {
	ln := l.links(pc)
	ln.prev, ln.next = l.tail, nil
	if l.tail != nil {
		l.links(l.tail).next = pc
	} else {
		l.head = pc
	}
	l.tail = pc
	l.n++
}

func (l *idleList) remove(pc *pconn) {
	ln := l.links(pc)
	if ln.prev != nil {
		l.links(ln.prev).next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		l.links(ln.next).prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	ln.prev, ln.next = nil, nil
	l.n--
}

func (p *idlePool) init(perHost, total int, timeout time.Duration) {
	p.perHost, p.total, p.timeout = perHost, total, timeout
	p.dests = map[destKey]*idleList{}
	p.all.global = true
}

// get takes the most recently used idle connection to k, or nil.
func (p *idlePool) get(k destKey) *pconn {
	var expired []*pconn
	p.mu.Lock()
	l := p.dests[k]
	var pc *pconn
	if l != nil {
		now := time.Now()
		cutoff := now.Add(-p.timeout)
		for l.tail != nil {
			c := l.tail
			p.unlink(l, c)
			if c.idleAt.After(cutoff) {
				pc = c
				pc.recent = now.Sub(c.idleAt) < recentIdle
				break
			}
			expired = append(expired, c)
		}
		if l.n == 0 {
			delete(p.dests, k)
			p.spare = l
		}
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.nc.Close()
	}
	return pc
}

// unlink removes pc from l and from the global list; p.mu is held.
func (p *idlePool) unlink(l *idleList, pc *pconn) {
	l.remove(pc)
	p.all.remove(pc)
}

// put keeps pc idle, or closes it when its destination or the pool is full
// (the longest idle connection makes room for it in the total bound).
func (p *idlePool) put(pc *pconn) {
	var evict *pconn
	p.mu.Lock()
	if pc.epoch != p.closed {
		p.mu.Unlock()
		pc.nc.Close()
		return
	}
	l := p.dests[pc.key]
	if l == nil {
		if l = p.spare; l != nil {
			p.spare = nil
		} else {
			l = &idleList{}
		}
		p.dests[pc.key] = l
	}
	if l.n >= p.perHost {
		p.mu.Unlock()
		pc.nc.Close()
		return
	}
	if p.all.n >= p.total {
		evict = p.all.head
		el := p.dests[evict.key]
		p.unlink(el, evict)
		if el.n == 0 && el != l {
			delete(p.dests, evict.key)
		}
	}
	pc.idleAt = time.Now()
	l.pushBack(pc)
	p.all.pushBack(pc)
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.timeout, p.sweep)
		} else {
			p.timer.Reset(p.timeout)
		}
	}
	p.mu.Unlock()
	if evict != nil {
		evict.nc.Close()
	}
}

// sweep closes connections idle past the timeout and re-arms the timer for
// the next one.
func (p *idlePool) sweep() {
	var expired []*pconn
	p.mu.Lock()
	cutoff := time.Now().Add(-p.timeout)
	for pc := p.all.head; pc != nil && !pc.idleAt.After(cutoff); pc = p.all.head {
		l := p.dests[pc.key]
		p.unlink(l, pc)
		if l.n == 0 {
			delete(p.dests, pc.key)
		}
		expired = append(expired, pc)
	}
	if head := p.all.head; head != nil {
		p.timer.Reset(head.idleAt.Sub(cutoff))
	} else {
		p.armed = false
	}
	p.mu.Unlock()
	for _, pc := range expired {
		pc.nc.Close()
	}
}

// closeAll closes every idle connection; connections in use when it is called
// are closed when they are done instead of being kept.
func (p *idlePool) closeAll() {
	p.mu.Lock()
	var all []*pconn
	for pc := p.all.head; pc != nil; pc = p.all.head {
		p.unlink(p.dests[pc.key], pc)
		all = append(all, pc)
	}
	clear(p.dests)
	p.closed++
	if p.timer != nil {
		p.timer.Stop()
	}
	p.armed = false
	p.mu.Unlock()
	for _, pc := range all {
		pc.nc.Close()
	}
}

// epoch is the closeAll count a new connection is born in.
func (p *idlePool) epoch() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// len reports the idle connections kept (for tests).
func (p *idlePool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.n
}
