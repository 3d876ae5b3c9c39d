// Package heapfloor owns the process's garbage-collection pace while its heap is
// small: it lets the heap grow to a floor (16 MiB by default in `portcullis run`) before the collector runs,
// and above the floor leaves Go's usual rule (collect when the heap has grown by
// GOGC = 100 % of what the last cycle found live).
//
// A proxy's live heap is a few MiB while its garbage is produced at tens of MiB a
// second (every request's header maps, contexts and log entries), so with Go's
// default the collector runs every few milliseconds, and each run's fixed costs
// (stacks and globals scanned, write barriers on, assists) are paid for very little
// garbage. The floor trades a bounded amount of memory for that CPU, the way a
// "ballast" once did, without the ballast's allocation: after every cycle the
// Tuner sets GOGC so that the next cycle's goal is the floor, and 100 once the live
// heap is half the floor or more. A soft memory limit (runtime/debug
// SetMemoryLimit, GOMEMLIMIT) still bounds the heap above it.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// runtimeHeapMinimum is the Go runtime's smallest heap goal at GOGC=100 (its
// defaultHeapMinimum, 4 MiB): the runtime scales it by GOGC/100, so a GOGC of g never
// lets a cycle start below 4 MiB × g/100, whatever the live heap.
const runtimeHeapMinimum = 4 << 20

// DefaultPercent is Go's GOGC, which the Tuner sets when the floor is reached and
// puts back when it stops.
const DefaultPercent = 100

// Tuner sets GOGC after every garbage collection so that the heap may reach the
// floor before the next. Start one per process; Stop puts GOGC back to 100.
type Tuner struct {
	mu      sync.Mutex
	floor   int64
	stopped bool
	percent int // the GOGC last set; 0 before the first
	samples []metrics.Sample
}

// sentinel is the object whose collection tells the Tuner a cycle has ended: large
// enough never to come from the tiny allocator, whose batching could keep it alive.
type sentinel struct{ _ [32]byte }

// Start begins tuning with the given floor in bytes and returns the Tuner; floor
// ≤ 0 starts nothing and returns nil. The Tuner acts from the runtime's cleanup
// goroutine once per garbage collection, until Stop.
func Start(floor int64) *Tuner {
	if floor <= 0 {
		return nil
	}
	t := &Tuner{floor: floor, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	t.mu.Lock()
	t.tuneLocked()
	t.mu.Unlock()
	t.arm()
	return t
}

// Stop ends the tuning and puts GOGC back to 100. Safe on a nil Tuner and twice.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(DefaultPercent)
}

// arm attaches the end-of-cycle hook to a fresh object nothing refers to, so the
// next collection finds it unreachable and runs afterGC.
func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), (*Tuner).afterGC, t)
}

func (t *Tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.tuneLocked()
	t.arm()
}

// tuneLocked sets GOGC from the last cycle's live heap (PercentFor).
func (t *Tuner) tuneLocked() {
	metrics.Read(t.samples)
	live := int64(t.samples[0].Value.Uint64())
	scan := live + int64(t.samples[1].Value.Uint64()) + int64(t.samples[2].Value.Uint64())
	p := PercentFor(t.floor, live, scan)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// PercentFor is the GOGC that puts the next cycle's goal at floor for a heap whose
// last cycle found live bytes live and scan bytes to scan (live heap, stacks and
// globals; both 0 before the first cycle). The runtime's goal is the larger of
// live + scan × GOGC/100 and 4 MiB × GOGC/100, so GOGC is the smaller of the two
// that reach the floor; DefaultPercent once live is half the floor or more.
func PercentFor(floor, live, scan int64) int {
	if live*2 >= floor {
		return DefaultPercent
	}
	p := floor * 100 / runtimeHeapMinimum
	if live > 0 && scan > 0 {
		p = min(p, (floor-live)*100/scan)
	}
	return int(max(p, DefaultPercent))
}
