package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func testEntry(size int) *entry {
	e := &entry{header: http.Header{}}
	e.setBody(make([]byte, size))
	return e
}

func TestStoreScanResistance(t *testing.T) {
	var st counters
	s := newStore(1<<20, 1<<19, &st) // room for about 100 objects of 10 KiB
	hot := make([]string, 20)
	for i := range hot {
		hot[i] = "hot/" + strconv.Itoa(i)
		s.put(hot[i], testEntry(10<<10), s.beginFill(hot[i]), 4, 0)
	}
	misses := 0
	for i := range 6000 {
		k := "scan/" + strconv.Itoa(i)
		s.put(k, testEntry(10<<10), s.beginFill(k), 4, 0) // one-hit wonders
		if i%10 == 0 {
			for _, h := range hot {
				if s.get(h) == nil {
					misses++
					s.put(h, testEntry(10<<10), s.beginFill(h), 4, 0)
				}
			}
		}
	}
	// An LRU would lose the whole hot set between two rounds (200 scan
	// objects > 100 slots); S3-FIFO keeps it after the first rounds.
	t.Logf("hot-set misses under a 6000-object scan: %d", misses)
	if misses > 2*len(hot) {
		t.Fatalf("hot set missed %d times under a scan", misses)
	}
	if b, _, _ := s.usage(); b > s.max {
		t.Fatalf("bytes %d over max %d", b, s.max)
	}
	if st.evictions.Load() == 0 {
		t.Fatal("no evictions counted")
	}
}

func TestStoreVariantsAndRemove(t *testing.T) {
	var st counters
	s := newStore(1<<20, 1<<19, &st)
	mk := func(v string) *entry {
		e := testEntry(10)
		e.varyNames, e.varyVals = []string{"Accept"}, []string{v}
		return e
	}
	a, b, a2 := mk("a"), mk("b"), mk("a")
	s.put("k", a, s.beginFill("k"), 2, 0)
	s.put("k", b, s.beginFill("k"), 2, 0)
	s.put("k", a2, s.beginFill("k"), 2, 0)
	if vs := s.get("k"); len(vs) != 2 || vs[0] != a2 || vs[1] != b {
		t.Fatalf("variants = %v", vs)
	}
	s.put("k", mk("c"), s.beginFill("k"), 2, 0)
	if vs := s.get("k"); len(vs) != 2 {
		t.Fatalf("max variants not enforced: %d", len(vs))
	}
	g := s.beginFill("k")
	if !s.remove("k") || s.get("k") != nil {
		t.Fatal("remove failed")
	}
	if s.put("k", mk("d"), g, 2, 0) {
		t.Fatal("a response fetched before an invalidation was stored after it")
	}
	if b, _, n := s.usage(); b != 0 || n != 0 {
		t.Fatalf("usage after remove: %d bytes %d objects", b, n)
	}
}

// TestMemoryBound passes 256 MB of distinct objects (1 GB with
// PORTCULLIS_CACHE_GB=1) through a cache bounded to 64 MiB and checks that the
// heap stays within the bound plus a stated overhead of 16 MiB (in-flight
// buffers, maps, GC slack).
func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const (
		maxBytes = 64 << 20
		objSize  = 1 << 20
		overhead = 16 << 20
	)
	total := int64(256 << 20)
	if os.Getenv("PORTCULLIS_CACHE_GB") == "1" {
		total = 1 << 30
	}
	payload := make([]byte, objSize)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Length", strconv.Itoa(objSize))
		_, _ = w.Write(payload)
	}))
	defer origin.Close()
	c, err := New(Config{MaxBytes: maxBytes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: c.Wrap(tr)}
	ctx := WithPolicy(context.Background(), &Policy{Enabled: true})

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := uint64(0)
	n := int(total / objSize)
	for i := range n {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/obj/%d", origin.URL, i), nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if st := c.Stats(); st.Bytes > maxBytes {
			t.Fatalf("store holds %d bytes > %d", st.Bytes, maxBytes)
		}
		if i%32 == 31 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse-min(base, ms.HeapInuse))
		}
	}
	st := c.Stats()
	t.Logf("passed %d MiB; store %d MiB in %d objects, %d evictions; peak heap growth %d MiB",
		total>>20, st.Bytes>>20, st.Objects, st.Evictions, peak>>20)
	if peak > maxBytes+overhead {
		t.Fatalf("heap grew by %d MiB, bound %d MiB + %d MiB", peak>>20, maxBytes>>20, overhead>>20)
	}
	if st.Evictions == 0 || st.Bytes < maxBytes/2 {
		t.Fatalf("cache did not fill and evict: %+v", st)
	}
}

func TestCloseStopsBackgroundRefresh(t *testing.T) {
	entered := make(chan struct{}, 1)
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
		if n > 1 {
			entered <- struct{}{}
			<-r.Context().Done() // hangs until the refresh is cancelled
			return
		}
		_, _ = rw.Write([]byte("v1"))
	})
	w.get("/")
	w.clk.Advance(5 * time.Second)
	if r := w.get("/"); r.body != "v1" {
		t.Fatalf("stale body %q", r.body)
	}
	<-entered
	done := make(chan struct{})
	go func() { _ = w.c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the background refresh")
	}
	// After Close no new refresh starts, but requests are still answered.
	w.clk.Advance(time.Second)
	if r := w.get("/"); r.body != "v1" {
		t.Fatalf("after Close: %q", r.body)
	}
}

// TestStoreFillReservations: fills in progress are charged to the store, at
// most fillMax of them, stored responses are evicted to make room, and the
// total never exceeds max.
func TestStoreFillReservations(t *testing.T) {
	var st counters
	s := newStore(1<<20, 1<<19, &st)
	for i := range 90 {
		s.put(fmt.Sprint("k", i), testEntry(10<<10), s.beginFill(fmt.Sprint("k", i)), 4, 0)
	}
	if !s.reserve(300<<10) || !s.reserve(200<<10) {
		t.Fatal("reservations within fillMax refused")
	}
	if s.reserve(100 << 10) {
		t.Fatal("a reservation beyond fillMax was granted")
	}
	b, f, _ := s.usage()
	if f != 500<<10 || b > s.max {
		t.Fatalf("bytes %d (max %d), filling %d, want 500 KiB filling", b, s.max, f)
	}
	if st.evictions.Load() == 0 {
		t.Fatal("no stored response was evicted to make room for the fills")
	}
	// A finished fill hands its reservation to the stored response.
	if !s.put("new", testEntry(200<<10), s.beginFill("new"), 4, 300<<10) {
		t.Fatal("finished fill not stored")
	}
	s.release(200 << 10)
	if b, f, _ := s.usage(); f != 0 || b > s.max {
		t.Fatalf("after the fills: bytes %d, filling %d", b, f)
	}
}
