package dnsserver

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// inflight counts the queries waiting for an upstream answer, in all and per
// client address, so that a flood of cache misses (random subdomains against a
// slow upstream) holds a bounded number of goroutines and upstream sockets.
type inflight struct {
	total  atomic.Int64
	mu     sync.Mutex
	client map[netip.Addr]int
}

// acquire takes a slot for client unless the server already waits for max
// queries, or for perClient queries of this client; ok is false then.
func (l *inflight) acquire(client netip.Addr, max, perClient int) (ok bool) {
	if l.total.Add(1) > int64(max) {
		l.total.Add(-1)
		return false
	}
	l.mu.Lock()
	if l.client == nil {
		l.client = make(map[netip.Addr]int)
	}
	n := l.client[client]
	if n >= perClient {
		l.mu.Unlock()
		l.total.Add(-1)
		return false
	}
	l.client[client] = n + 1
	l.mu.Unlock()
	return true
}

// release gives back a slot acquire granted to client.
func (l *inflight) release(client netip.Addr) {
	l.mu.Lock()
	if n := l.client[client]; n <= 1 {
		delete(l.client, client)
	} else {
		l.client[client] = n - 1
	}
	l.mu.Unlock()
	l.total.Add(-1)
}
