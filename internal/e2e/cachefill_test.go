package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/admin"
)

// fillBody returns object n of TestCacheFillsCountAgainstMaxBytes: size
// bytes of base (bytes counting modulo 251) from an offset that depends on n.
func fillBody(base []byte, n, size int) []byte {
	off := n * 13 % 251
	return base[off : off+size]
}

// cacheStatus reads the cache's counters from the admin listener's status.json.
func cacheStatus(t *testing.T, adminAddr string) admin.CacheStatus {
	t.Helper()
	res, err := http.Get("http://" + adminAddr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s admin.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil || s.Cache == nil {
		t.Fatalf("status.json: %v, cache %v", err, s.Cache)
	}
	return *s.Cache
}

// TestCacheFillsCountAgainstMaxBytes: clients that ask for many different
// large cacheable objects and do not read them cannot make the cache hold
// more than max_bytes: responses being stored draw from the cache's budget
// and, once it is spent, are relayed without being stored. The clients that
// then read get complete, correct bodies.
func TestCacheFillsCountAgainstMaxBytes(t *testing.T) {
	const (
		clients  = 12
		size     = 4 << 20
		first    = 1 << 20
		maxBytes = 8 << 20
		slack    = 18 << 20 // connections, buffers, GC slack
	)
	base := make([]byte, size+251)
	for i := range base {
		base[i] = byte(i % 251)
	}
	// The origin sends the first MiB of each object, and the rest once the
	// clients start reading.
	release := make(chan struct{})
	o := startOrigin(t, func(c net.Conn, r *http.Request) bool {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/obj/"))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=3600\r\nContent-Length: %d\r\n\r\n", size)
		body := fillBody(base, n, size)
		if _, err := c.Write(body[:first]); err != nil {
			return false
		}
		<-release
		_, err := c.Write(body[first:])
		return err == nil
	})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	p := startProxy(t, fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: site, host: [site.test], pool: site, cache: on}]
pools:
  site: {members: [{url: %q}]}
cache: {max_bytes: 8MiB, max_object_bytes: 4MiB}
cache_policies:
  on: {enabled: true}
admin:
  listen: "127.0.0.1:0"
  log: {path: $DIR/access.log}
`, o.url()), nil, "reverse", "admin")
	heap0 := heapInUse()

	conns := make([]net.Conn, clients)
	readers := make([]*bufio.Reader, clients)
	for i := range conns {
		// A small receive window, as a client that does not read would
		// advertise: the proxy cannot hand the whole body to the kernel.
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = setRcvBuf(fd, 16<<10)
			})
			return errors.Join(err, serr)
		}}
		c, err := d.Dial("tcp", p.addrs["reverse"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		fmt.Fprintf(c, "GET /obj/%d HTTP/1.1\r\nHost: site.test\r\n\r\n", i)
		conns[i] = c
	}
	// Each client reads the response's header (so the proxy has begun to
	// store it) and then stops reading.
	resps := make([]*http.Response, clients)
	for i, c := range conns {
		readers[i] = bufio.NewReaderSize(c, 4096)
		res, err := http.ReadResponse(readers[i], nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("client %d: %v %v", i, err, res)
		}
		resps[i] = res
	}
	var peak, filling int64
	for range 10 {
		st := cacheStatus(t, p.addrs["admin"])
		filling = max(filling, st.Filling)
		if st.Bytes > maxBytes {
			t.Fatalf("the cache holds %d bytes (%d filling), max_bytes is %d", st.Bytes, st.Filling, maxBytes)
		}
		peak = max(peak, heapInUse()-heap0)
		time.Sleep(50 * time.Millisecond) // sampling interval, not synchronisation
	}
	if filling == 0 {
		t.Error("status.json never showed bytes held by fills in progress")
	}
	t.Logf("%d clients not reading %d MiB objects, max_bytes %d MiB: fills held up to %d KiB, heap grew %d MiB", clients, size>>20, maxBytes>>20, filling>>10, peak>>20)
	if peak > maxBytes+slack {
		t.Fatalf("heap grew by %d MiB with %d MiB objects unread by %d clients; bound %d MiB + %d MiB",
			peak>>20, size>>20, clients, maxBytes>>20, slack>>20)
	}

	// The clients now read: every body is complete and correct.
	letGo()
	for i, res := range resps {
		b, err := io.ReadAll(res.Body)
		if err != nil || len(b) != size {
			t.Fatalf("client %d: read %d bytes, %v", i, len(b), err)
		}
		if !bytes.Equal(b, fillBody(base, i, size)) {
			t.Fatalf("client %d: the body differs from the origin's", i)
		}
		conns[i].Close()
	}
	// The budget taken by the fills is returned, and the cache stores again.
	waitFor(t, 10*time.Second, "the fills' budget to be returned", func() bool {
		return cacheStatus(t, p.addrs["admin"]).Filling == 0
	})
	get := func() *http.Response {
		rs := rawExchange(t, p.addrs["reverse"], "GET /obj/1 HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
		if len(rs) != 1 || rs[0].StatusCode != 200 || rs[0].ContentLength != size {
			t.Fatalf("GET /obj/1 after the attack: %v", statuses(rs))
		}
		return rs[0]
	}
	get()
	if cs := get().Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Fatalf("a complete read after the attack was not stored: Cache-Status %q", cs)
	}
	if st := cacheStatus(t, p.addrs["admin"]); st.Bytes > maxBytes {
		t.Fatalf("the cache holds %d bytes, max_bytes is %d", st.Bytes, maxBytes)
	}
}
