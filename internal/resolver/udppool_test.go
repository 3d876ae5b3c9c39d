package resolver

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPSocketsAreReused: sequential misses over UDP reuse one socket instead of
// opening one each (the process's descriptors do not grow with the queries), and
// a socket whose query timed out is closed rather than reused.
func TestUDPSocketsAreReused(t *testing.T) {
	up := testZone(t).Silence("silent.test").Start(t)
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}, Timeout: 200 * time.Millisecond})
	u := r.ups[0].u.(*udpUpstream)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count descriptors: %v", err)
		}
		return len(ents)
	}
	before := fds()
	for i := range 50 {
		if _, err := r.Exchange(t.Context(), query(fmt.Sprintf("n%d.test.", i), dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(u.idle); n != 1 {
		t.Fatalf("%d idle sockets after 50 sequential queries, want 1 (reused)", n)
	}
	if d := fds() - before; d > 2 {
		t.Fatalf("descriptors grew by %d over 50 sequential queries", d)
	}
	if _, err := r.Exchange(t.Context(), query("x.silent.test.", dns.TypeA)); err == nil {
		t.Fatal("a silent upstream answered")
	}
	if n := len(u.idle); n != 0 {
		t.Fatalf("%d idle sockets after a timeout, want 0 (the socket that timed out is closed)", n)
	}
}
