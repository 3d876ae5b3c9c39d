package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		floor, live, scan int64
		want              int
	}{
		{32 * mib, 0, 0, 800},                 // before the first cycle: the runtime's minimum goal is the floor
		{32 * mib, 2 * mib, 2 * mib, 800},     // live small: the minimum goal still decides
		{32 * mib, 8 * mib, 10 * mib, 240},    // 8 + 10 × 2.4 = 32
		{32 * mib, 15 * mib, 16 * mib, 106},   // just under half the floor
		{32 * mib, 16 * mib, 17 * mib, 100},   // half the floor: Go's own pace already reaches it
		{32 * mib, 100 * mib, 110 * mib, 100}, // far above
		{4 * mib, 1 * mib, 1 * mib, 100},      // a floor at the runtime's own minimum changes nothing
	} {
		if got := PercentFor(c.floor, c.live, c.scan); got != c.want {
			t.Errorf("PercentFor(%d MiB, %d MiB, %d MiB) = %d, want %d", c.floor/mib, c.live/mib, c.scan/mib, got, c.want)
		}
	}
}

var sink []byte

// cyclesWhileAllocating counts the garbage collections run while 256 MiB of
// short-lived 1 KiB objects are allocated beside a live heap of about 2 MiB.
func cyclesWhileAllocating() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	live := make([][]byte, 2048)
	for i := range live {
		live[i] = make([]byte, 1024)
	}
	runtime.GC()
	metrics.Read(s)
	before := s[0].Value.Uint64()
	for range 256 << 10 {
		sink = make([]byte, 1024)
	}
	metrics.Read(s)
	runtime.KeepAlive(live)
	return s[0].Value.Uint64() - before
}

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFloorSetsTheGoal: once a collection has run with the Tuner on and a small
// live heap, the next collection is due at the floor (not at Go's 4 MiB), and
// Stop puts GOGC back.
func TestFloorSetsTheGoal(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(DefaultPercent))
	const floor = 64 << 20
	tu := Start(floor)
	runtime.GC()
	// The Tuner acts from the runtime's cleanup goroutine after the cycle:
	// wait for the goal it sets (bounded), not for a fixed time.
	for deadline := time.Now().Add(10 * time.Second); read("/gc/heap/goal:bytes") < floor; {
		if time.Now().After(deadline) {
			t.Fatalf("next collection due at %d MiB 10 s after a collection with the Tuner on, want at least the %d MiB floor (GOGC %d, live %d MiB)",
				read("/gc/heap/goal:bytes")>>20, floor>>20, read("/gc/gogc:percent"), read("/gc/heap/live:bytes")>>20)
		}
		runtime.Gosched()
	}
	if p := read("/gc/gogc:percent"); p <= DefaultPercent {
		t.Errorf("GOGC while tuning = %d, want above %d", p, DefaultPercent)
	}
	tu.Stop()
	tu.Stop()
	if p := read("/gc/gogc:percent"); p != DefaultPercent {
		t.Errorf("GOGC after Stop = %d, want %d", p, DefaultPercent)
	}
	// After Stop nothing re-arms: the next collections leave GOGC alone.
	runtime.GC()
	runtime.GC()
	if p := read("/gc/gogc:percent"); p != DefaultPercent {
		t.Errorf("GOGC after Stop and two collections = %d, want %d", p, DefaultPercent)
	}
}

// TestFloorSpacesCollections: with a 64 MiB floor, 256 MiB of short-lived
// garbage takes a handful of collections, where Go's pace (a goal of twice the
// live heap, never under 4 MiB) takes dozens. A collection that runs while the
// loop allocates counts what the loop allocated meanwhile as live, so the
// bound leaves room: at most 12, about 21 MiB apart on average.
func TestFloorSpacesCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(DefaultPercent))
	plain := cyclesWhileAllocating()
	tu := Start(64 << 20)
	floored := cyclesWhileAllocating()
	tu.Stop()
	t.Logf("collections for 256 MiB of garbage: %d at Go's pace, %d with a 64 MiB floor", plain, floored)
	if floored > 12 {
		t.Errorf("%d collections with a 64 MiB floor (%d at Go's pace), want at most 12", floored, plain)
	}
}

func TestStartWithoutFloor(t *testing.T) {
	if tu := Start(0); tu != nil {
		t.Fatalf("Start(0) = %v, want nil", tu)
	}
	var tu *Tuner // Stop is a no-op on nil
	tu.Stop()
}
