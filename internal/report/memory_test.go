package report

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// TestLargeLogInBoundedMemory: a 200 MB squid log written by the proxy's writer, in
// which every line has its own user, client and site (plus two heavy hitters), is
// read with the live heap staying under 32 MiB (measured after a GC every 16 MB
// read), every sketch within its counters, and the heavy hitters on top.
func TestLargeLogInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB")
	}
	const size = 200 << 20
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 4096
	l, err := accesslog.NewWriter(accesslog.Config{Format: accesslog.FormatSquid, Buffer: chunk + 1}, f)
	if err != nil {
		t.Fatal(err)
	}
	padding := "/" + strings.Repeat("p", 1000)
	e := accesslog.Entry{Door: "forward", Method: "GET", Action: "allow", Status: 200, BytesOut: 100, Upstream: "direct"}
	lines := 0
	began := time.Now()
	for written := int64(0); written < size; {
		for range chunk {
			i := lines
			lines++
			e.Time = start.Add(time.Duration(i) * 100 * time.Millisecond)
			e.Client = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			e.User = "pupil" + strconv.Itoa(i)
			e.URL = "http://h" + strconv.Itoa(i) + ".example" + padding
			e.Action, e.Status = "allow", 200
			switch i % 10 {
			case 0:
				e.User, e.URL = "heavy", "http://heavy.example"+padding
			case 1:
				e.User, e.URL, e.Action, e.Status = "blocky", "http://blocked.example"+padding, "block", 403
			}
			l.Log(&e)
		}
		if err := l.Reopen(); err != nil { // writes the chunk out
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		written = st.Size()
	}
	l.Close()
	f.Close()
	t.Logf("generated in %v", time.Since(began))
	began = time.Now()
	if l.Dropped() != 0 {
		t.Fatalf("%d lines dropped", l.Dropped())
	}

	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)
	var next int64
	b := New(Options{Progress: func(read int64) {
		if read < next {
			return
		}
		next = read + 16<<20
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}})
	if err := b.Read(path, in); err != nil {
		t.Fatal(err)
	}
	r := b.Report()
	t.Logf("read in %v", time.Since(began))
	grown := int64(peak) - int64(base)
	t.Logf("%d lines, %d MB: live heap grew by at most %.1f MiB", lines, size>>20, float64(grown)/(1<<20))
	if grown > 32<<20 {
		t.Errorf("live heap grew by %d MiB reading the log", grown>>20)
	}
	if r.Entries != uint64(lines) || r.Skipped != 0 {
		t.Fatalf("entries %d skipped %d %v, want %d", r.Entries, r.Skipped, r.Problems, lines)
	}
	for _, l := range []*list{b.users, b.clients, b.sites, b.blocked, b.userBlocks} {
		if l.sk.Len() > DefaultCounters {
			t.Errorf("%s: %d counters", l.id, l.sk.Len())
		}
	}
	tops := map[string]string{}
	for _, l := range r.Lists {
		if len(l.Rows) > DefaultTop {
			t.Errorf("%s: %d rows", l.ID, len(l.Rows))
		}
		if len(l.Rows) > 0 {
			tops[l.ID] = l.Rows[0].Name + " " + l.Rows[0].Detail
		}
	}
	want := map[string]string{"user": "blocky ", "site": "blocked.example ", "blocked_site": "blocked.example ",
		"blocked_by_user": "blocky blocked.example"}
	for id, w := range want {
		if tops[id] != w {
			t.Errorf("%s: top %q, want %q", id, tops[id], w)
		}
	}
	if r.Lists[0].Rows[1].Name != "heavy" || r.Lists[0].Rows[0].Requests < uint64(lines/10) {
		t.Errorf("users: %+v", r.Lists[0].Rows[:3])
	}
}
