package cache

import (
	"sync"
	"sync/atomic"
)

// flights tracks the one origin request per key that concurrent misses wait for
// (request coalescing, like nginx proxy_cache_lock and Varnish's waiting list).
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one origin request others may wait for. done is closed once the
// leader knows the outcome: stored, not storable, failed or abandoned.
type flight struct {
	done chan struct{}
	once sync.Once
	key  string
	fs   *flights

	waiters atomic.Int32 // requests waiting now (observability, tests)
}

// join returns the flight for key and whether the caller leads it (and must
// call finish).
func (fs *flights) join(key string) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	f := &flight{done: make(chan struct{}), key: key, fs: fs}
	fs.m[key] = f
	return f, true
}

// finish releases the waiters; later calls do nothing. A nil flight is allowed.
func (f *flight) finish() {
	if f == nil {
		return
	}
	f.once.Do(func() {
		f.fs.mu.Lock()
		if f.fs.m[f.key] == f {
			delete(f.fs.m, f.key)
		}
		f.fs.mu.Unlock()
		close(f.done)
	})
}
