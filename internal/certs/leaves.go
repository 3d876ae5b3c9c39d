package certs

import (
	"container/list"
	"crypto/tls"
	"sync"
	"time"
)

// DefaultLeafCacheSize is the number of leaves NewLeaves(0) keeps.
const DefaultLeafCacheSize = 10000

// Leaves is a bounded LRU cache of leaf certificates with one signing in flight
// per name. Share one across reloads (it is keyed by CA, so a new CA never gets an
// old leaf). Safe for concurrent use.
type Leaves struct {
	mu       sync.Mutex
	max      int
	lru      *list.List // of *leafEntry, most recent first
	byKey    map[leafKey]*list.Element
	inflight map[leafKey]*leafCall
}

type leafKey struct {
	ca   [32]byte
	name string
}

type leafEntry struct {
	key  leafKey
	cert *tls.Certificate
}

type leafCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// NewLeaves returns a cache holding up to max leaves (0: DefaultLeafCacheSize).
func NewLeaves(max int) *Leaves {
	if max <= 0 {
		max = DefaultLeafCacheSize
	}
	return &Leaves{max: max, lru: list.New(), byKey: make(map[leafKey]*list.Element), inflight: make(map[leafKey]*leafCall)}
}

// Len returns the number of cached leaves.
func (l *Leaves) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// Get returns a leaf for name signed by ca, from the cache when it is valid for at
// least another day.
func (l *Leaves) Get(ca *CA, name string, now time.Time) (*tls.Certificate, error) {
	k := leafKey{ca: ca.spki, name: name}
	l.mu.Lock()
	if el, ok := l.byKey[k]; ok {
		e := el.Value.(*leafEntry)
		if now.Add(24 * time.Hour).Before(e.cert.Leaf.NotAfter) {
			l.lru.MoveToFront(el)
			l.mu.Unlock()
			return e.cert, nil
		}
	}
	if c, ok := l.inflight[k]; ok {
		l.mu.Unlock()
		<-c.done
		return c.cert, c.err
	}
	c := &leafCall{done: make(chan struct{})}
	l.inflight[k] = c
	l.mu.Unlock()

	c.cert, c.err = ca.Sign(name, now)

	l.mu.Lock()
	delete(l.inflight, k)
	if c.err == nil {
		if el, ok := l.byKey[k]; ok {
			el.Value.(*leafEntry).cert = c.cert
			l.lru.MoveToFront(el)
		} else {
			l.byKey[k] = l.lru.PushFront(&leafEntry{key: k, cert: c.cert})
			for l.lru.Len() > l.max {
				old := l.lru.Remove(l.lru.Back()).(*leafEntry)
				delete(l.byKey, old.key)
			}
		}
	}
	l.mu.Unlock()
	close(c.done)
	return c.cert, c.err
}
