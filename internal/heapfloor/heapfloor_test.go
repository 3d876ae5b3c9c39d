package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
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

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFloorSpacesCollections: with a 64 MiB floor the same garbage takes a fraction
// of the collections Go's default pace runs, and Stop puts GOGC back.
func TestFloorSpacesCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(DefaultPercent))
	plain := cyclesWhileAllocating()

	tu := Start(64 << 20)
	floored := cyclesWhileAllocating()
	if p := gogc(); p <= DefaultPercent {
		t.Errorf("GOGC while tuning = %d, want above %d", p, DefaultPercent)
	}
	tu.Stop()
	tu.Stop()
	if p := gogc(); p != DefaultPercent {
		t.Errorf("GOGC after Stop = %d, want %d", p, DefaultPercent)
	}
	t.Logf("collections for 256 MiB of garbage: %d at Go's pace, %d with a 64 MiB floor", plain, floored)
	if plain < 20 || floored*4 > plain {
		t.Errorf("collections: %d at Go's pace, %d with the floor; want the floor to run at most a quarter as many", plain, floored)
	}
	// After Stop nothing re-arms: the next collections leave GOGC alone.
	runtime.GC()
	runtime.GC()
	if p := gogc(); p != DefaultPercent {
		t.Errorf("GOGC after Stop and two collections = %d, want %d", p, DefaultPercent)
	}
}

func TestStartWithoutFloor(t *testing.T) {
	if tu := Start(0); tu != nil {
		t.Fatalf("Start(0) = %v, want nil", tu)
	}
	var tu *Tuner // Stop is a no-op on nil
	tu.Stop()
}
