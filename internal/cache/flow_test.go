package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitUntil polls cond until it holds or the deadline passes (for observing
// effects outside the test's control flow, never as synchronisation).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCoalesce100ConcurrentMisses(t *testing.T) {
	release := make(chan struct{})
	w := newWorld(t, Config{CoalesceTimeout: 30 * time.Second}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		<-release
		rw.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(rw, "one body %d", n)
	})
	const n = 100
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = w.get("/hot") })
	}
	// The leader is at the origin and the 99 others wait for it.
	waitUntil(t, "99 waiters", func() bool {
		w.c.flight.mu.Lock()
		f := w.c.flight.m["http://www.example.test/hot"]
		w.c.flight.mu.Unlock()
		return f != nil && f.waiters.Load() == n-1 && w.count.Load() == 1
	})
	close(release)
	wg.Wait()
	w.expectOrigin(1)
	collapsed := 0
	for _, r := range results {
		if r.status != 200 || r.body != "one body 1" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		if strings.Contains(r.cacheStatus(), "collapsed") {
			collapsed++
		}
	}
	if collapsed != n-1 || w.c.Stats().Collapsed != n-1 {
		t.Fatalf("collapsed = %d, stats %+v", collapsed, w.c.Stats())
	}
}

func TestCoalesceWaitIsBounded(t *testing.T) {
	release := make(chan struct{})
	w := newWorld(t, Config{CoalesceTimeout: 50 * time.Millisecond}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			<-release
		}
		rw.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(rw, "n=%d", n)
	})
	done := make(chan result)
	go func() { done <- w.get("/slow") }()
	waitUntil(t, "leader at origin", func() bool { return w.count.Load() == 1 })
	r := w.get("/slow") // waits 50 ms, then goes to the origin itself
	if r.body != "n=2" {
		t.Fatalf("bounded waiter got %q", r.body)
	}
	close(release)
	if r := <-done; r.body != "n=1" {
		t.Fatalf("leader got %q", r.body)
	}
}

func TestCoalesceUncacheableReleasesWaiters(t *testing.T) {
	release := make(chan struct{})
	w := newWorld(t, Config{CoalesceTimeout: time.Minute}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			<-release
		}
		rw.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(rw, "n=%d", n)
	})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { w.get("/p") })
	}
	waitUntil(t, "4 waiters", func() bool {
		w.c.flight.mu.Lock()
		defer w.c.flight.mu.Unlock()
		f := w.c.flight.m["http://www.example.test/p"]
		return f != nil && f.waiters.Load() == 4
	})
	close(release)
	wg.Wait() // would take a minute if the waiters were not released
	w.expectOrigin(5)
}

func TestStaleWhileRevalidate(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		fmt.Fprintf(rw, "v%d", n)
	})
	w.get("/")
	w.clk.Advance(5 * time.Second)
	r1 := w.get("/")
	r2 := w.get("/")
	if r1.body != "v1" {
		t.Fatalf("stale body %q", r1.body)
	}
	expectStatus(t, r1, "hit", "ttl=-4")
	_ = r2
	waitUntil(t, "background refresh stored", func() bool {
		vs := w.c.store.get("http://www.example.test/")
		return len(vs) == 1 && string(vs[0].body) == "v2"
	})
	r := w.get("/")
	if r.body != "v2" {
		t.Fatalf("after refresh %q", r.body)
	}
	if got := w.count.Load(); got != 2 {
		t.Fatalf("origin saw %d, want 2 (one background refresh)", got)
	}
}

func TestStaleIfError(t *testing.T) {
	w := newWorld(t, Config{}, fixed("good", "Cache-Control", "max-age=1, stale-if-error=60"))
	w.get("/")
	w.clk.Advance(10 * time.Second)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) { rw.WriteHeader(http.StatusServiceUnavailable) })
	r := w.get("/")
	if r.status != 200 || r.body != "good" {
		t.Fatalf("stale-if-error on 503: %d %q", r.status, r.body)
	}
	expectStatus(t, r, "fwd=stale", "fwd-status=503", "detail=stale-if-error")
	w.origin.Close() // origin down: connection refused
	r = w.get("/")
	if r.status != 200 || r.body != "good" {
		t.Fatalf("stale-if-error when down: %d %q", r.status, r.body)
	}
	w.clk.Advance(time.Minute)
	if r := w.get("/"); r.status != http.StatusBadGateway {
		t.Fatalf("beyond stale-if-error: %d", r.status)
	}
}

func TestMustRevalidateNeverServedStale(t *testing.T) {
	w := newWorld(t, Config{ServeStaleWhenDown: true}, fixed("mr", "Cache-Control", "max-age=1, must-revalidate"))
	w.get("/")
	w.clk.Advance(5 * time.Second)
	w.origin.Close()
	if r := w.get("/", "Cache-Control", "max-stale=100"); r.status != http.StatusBadGateway {
		t.Fatalf("must-revalidate served stale: %d %q", r.status, r.body)
	}
}

func TestServeStaleWhenDown(t *testing.T) {
	w := newWorld(t, Config{ServeStaleWhenDown: true}, fixed("kept", "Cache-Control", "max-age=1"))
	w.get("/")
	w.clk.Advance(time.Hour)
	w.origin.Close()
	r := w.get("/")
	if r.status != 200 || r.body != "kept" {
		t.Fatalf("when down: %d %q", r.status, r.body)
	}
	expectStatus(t, r, "fwd=stale", "detail=origin-down")
	if w.c.Stats().Stale != 1 {
		t.Fatalf("stats %+v", w.c.Stats())
	}
}

var errNoHealthy = errors.New("pool: no healthy member")

type failingTransport struct {
	mu   sync.Mutex
	err  error
	next http.RoundTripper
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.next.RoundTrip(r)
}

func TestServeStaleWhenPoolDownSentinel(t *testing.T) {
	origin := newWorld(t, Config{}, fixed("pooled", "Cache-Control", "max-age=1"))
	clk := newClock()
	c, err := New(Config{ServeStaleWhenDown: true}, nil, WithDownError(errNoHealthy), WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ft := &failingTransport{next: http.DefaultTransport}
	client := &http.Client{Transport: c.Wrap(ft)}
	get := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(WithPolicy(context.Background(), &Policy{Enabled: true}), "GET", origin.origin.URL+"/x", nil)
		return client.Do(req)
	}
	res, err := get()
	if err != nil {
		t.Fatal(err)
	}
	drain(res.Body)
	clk.Advance(time.Hour)
	ft.mu.Lock()
	ft.err = fmt.Errorf("select: %w", errNoHealthy)
	ft.mu.Unlock()
	res, err = get()
	if err != nil {
		t.Fatalf("no stale served: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "pooled" {
		t.Fatalf("body %q", b)
	}
	ft.mu.Lock()
	ft.err = errors.New("some other failure")
	ft.mu.Unlock()
	if _, err := get(); err == nil {
		t.Fatal("an unrelated error must not serve stale without stale-if-error")
	}
}

func TestLargeObjectStreamedAndNotStored(t *testing.T) {
	half := make(chan struct{})
	release := make(chan struct{})
	big := strings.Repeat("x", 64<<10)
	w := newWorld(t, Config{MaxBytes: 1 << 20, MaxObjectBytes: 100 << 10}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(rw, big)
		rw.(http.Flusher).Flush()
		if n == 1 {
			close(half)
			<-release
		}
		_, _ = io.WriteString(rw, big)
	})
	req, _ := http.NewRequest("GET", w.proxy.URL+"/big", nil)
	res, err := w.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-half
	// The client gets the first half while the origin is still holding the second.
	if _, err := io.ReadFull(res.Body, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	close(release)
	rest, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || len(rest) != len(big) {
		t.Fatalf("rest: %d %v", len(rest), err)
	}
	w.get("/big")
	w.expectOrigin(2) // 128 KiB > max_object_bytes: not stored
	if st := w.c.Stats(); st.Objects != 0 {
		t.Fatalf("stored a too-large object: %+v", st)
	}
}

func TestStreamedObjectStoredWhenComplete(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=60")
		for i := range 100 {
			fmt.Fprintf(rw, "chunk %03d\n", i)
			rw.(http.Flusher).Flush() // chunked, no Content-Length
		}
	})
	a := w.get("/chunked")
	b := w.get("/chunked")
	w.expectOrigin(1)
	if a.body != b.body || len(b.body) != 1000 || b.header.Get("Content-Length") != "1000" {
		t.Fatalf("bodies differ or wrong length: %d %d %v", len(a.body), len(b.body), b.header)
	}
}

func TestClientAbortDoesNotStoreTruncated(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=60")
		rw.Header().Set("Content-Length", "200000")
		_, _ = io.WriteString(rw, strings.Repeat("a", 100000))
		rw.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	req, _ := http.NewRequest("GET", w.proxy.URL+"/t", nil)
	res, err := w.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadFull(res.Body, make([]byte, 1000))
	res.Body.Close()
	w.setHandler(fixed("whole", "Cache-Control", "max-age=60"))
	waitUntil(t, "leader finished", func() bool {
		w.c.flight.mu.Lock()
		defer w.c.flight.mu.Unlock()
		return len(w.c.flight.m) == 0
	})
	if r := w.get("/t"); r.body != "whole" {
		t.Fatalf("served a truncated body: %d bytes", len(r.body))
	}
}

func TestCoalesceServesNoCacheResponseToWaiters(t *testing.T) {
	release := make(chan struct{})
	w := newWorld(t, Config{CoalesceTimeout: 30 * time.Second}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		<-release
		rw.Header().Set("Cache-Control", "max-age=0")
		rw.Header().Set("ETag", `"e"`)
		fmt.Fprintf(rw, "n=%d", n)
	})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if r := w.get("/html"); r.body != "n=1" {
				t.Errorf("got %q", r.body)
			}
		})
	}
	waitUntil(t, "9 waiters", func() bool {
		w.c.flight.mu.Lock()
		defer w.c.flight.mu.Unlock()
		f := w.c.flight.m["http://www.example.test/html"]
		return f != nil && f.waiters.Load() == 9
	})
	close(release)
	wg.Wait()
	w.expectOrigin(1)
}

func TestStaleWhileRevalidateRespectsClientMaxAge(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		fmt.Fprintf(rw, "v%d", n)
	})
	w.get("/")
	w.clk.Advance(5 * time.Second)
	if r := w.get("/", "Cache-Control", "max-age=2"); r.body != "v2" {
		t.Fatalf("client max-age=2 got a 5 s old response: %q", r.body)
	}
	w.expectOrigin(2)
}

// TestUnsafeRequestsInvalidateOnlyTheirOwnFills: a response being stored is
// dropped by an unsafe request to its own URL, and by no other: a burst of
// PUTs to unrelated URLs while it streams leaves it stored.
func TestUnsafeRequestsInvalidateOnlyTheirOwnFills(t *testing.T) {
	release := make(chan struct{})
	var held sync.Map // path → struct{}: the first GET of it waits for release
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		if r.Method != http.MethodGet {
			rw.WriteHeader(http.StatusNoContent)
			return
		}
		rw.Header().Set("Cache-Control", "max-age=600")
		rw.WriteHeader(http.StatusOK)
		rw.(http.Flusher).Flush()
		if _, ok := held.LoadAndDelete(r.URL.Path); ok {
			<-release
		}
		_, _ = io.WriteString(rw, "body of "+r.URL.Path)
	})
	fill := func(path string, during func()) {
		t.Helper()
		got := make(chan result, 1)
		held.Store(path, struct{}{})
		before := w.count.Load()
		go func() { got <- w.get(path) }()
		waitUntil(t, "the origin to get the GET", func() bool { return w.count.Load() > before })
		during()
		release <- struct{}{}
		if r := <-got; r.body != "body of "+path {
			t.Fatalf("GET %s: %q", path, r.body)
		}
	}
	fill("/kept", func() {
		for i := range 2048 {
			if r := w.do(http.MethodPut, fmt.Sprintf("/unrelated/%d", i)); r.status != http.StatusNoContent {
				t.Fatalf("PUT: %d", r.status)
			}
		}
	})
	before := w.count.Load()
	if r := w.get("/kept"); r.body != "body of /kept" || w.count.Load() != before {
		t.Fatalf("2048 PUTs to other URLs dropped the store of /kept (origin asked again: %v)", w.count.Load() != before)
	}
	fill("/dropped", func() { w.do(http.MethodPut, "/dropped") })
	before = w.count.Load()
	if r := w.get("/dropped"); r.body != "body of /dropped" || w.count.Load() != before+1 {
		t.Fatal("a PUT to /dropped while it was being stored did not keep it from being stored")
	}
}
