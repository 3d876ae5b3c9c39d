package ctxafter

import "sync"

// funcs holds the functions registered with a Context's AfterFunc: Add is
// that method's work, Run runs them at the Context's end. The zero value is ready; a
// funcs must not be copied once used. Its first function is kept without
// an allocation (an upstream request registers one).
type funcs struct {
	mu sync.Mutex
	// fns: nil before the first Add; after Run, a non-nil slice of
	// capacity 0 (ran reports it), so that no field of its own says so.
	fns []func()
	arr [1]func()
}

func (l *funcs) ran() bool { return l.fns != nil && cap(l.fns) == 0 }

// Add registers f to run at Run and returns a function that unregisters
// f, reporting whether it did so before f ran. After Run, f runs at once in
// a goroutine of its own and stop reports false.
func (l *funcs) Add(f func()) (stop func() bool) {
	l.mu.Lock()
	if l.ran() {
		l.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	i := len(l.fns)
	if l.fns == nil {
		l.fns = l.arr[:0]
	}
	l.fns = append(l.fns, f)
	l.mu.Unlock()
	return func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.ran() && l.fns[i] != nil {
			l.fns[i] = nil
			return true
		}
		return false
	}
}

// Run runs the functions registered and not stopped, in the order they
// were added, in the calling goroutine and without holding a lock; it does
// so once (later calls, and Adds, see it done).
func (l *funcs) Run() {
	l.mu.Lock()
	if l.ran() {
		l.mu.Unlock()
		return
	}
	fns := l.fns
	l.fns = l.arr[:0:0]
	l.mu.Unlock()
	for _, f := range fns {
		if f != nil {
			f()
		}
	}
}
