package reverse

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pool"
)

// Requests with both Content-Length and Transfer-Encoding are refused with 400
// and a closed connection on every listener of the door (internal/h1's parser),
// and never reach an origin.

const (
	smuggleCLTE  = "POST /smuggle HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
	smuggleGet   = "GET /first HTTP/1.1\r\nHost: app.example.test\r\n\r\n"
	smuggleChunk = "POST /chunked HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
)

// smuggleDoor is a door with plain and TLS listeners before an origin that
// echoes request bodies and counts requests.
func smuggleDoor(t *testing.T) (*door, *testOrigin) {
	t.Helper()
	o := newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %q", r.Method, r.URL.Path, b)
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{TLS: TLSConfig{Mode: "internal"}, Routes: []Route{{Name: "app", Host: []string{"app.example.test"}, Pool: "app"}}}, pools, Options{})
	return d, o
}

// rawDial opens a raw connection to the door's plain or TLS listener
// (HTTP/1.1 by ALPN).
func (d *door) rawDial(t *testing.T, secure bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	var c net.Conn
	var err error
	if secure {
		c, err = tls.Dial("tcp", d.secure, &tls.Config{RootCAs: d.caPool, ServerName: "app.example.test", NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", d.plain)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readStatuses reads n responses and returns their status codes; a 400 must
// announce the close.
func readStatuses(t *testing.T, br *bufio.Reader, n int) []int {
	t.Helper()
	var codes []int
	for range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", len(codes)+1, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusBadRequest && !res.Close {
			t.Errorf("400 without Connection: close")
		}
		codes = append(codes, res.StatusCode)
	}
	return codes
}

// readEOF asserts the door closes the connection with nothing more to say.
func readEOF(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("want the connection closed, got %q, %v", rest, err)
	}
}

func TestSmuggledRequestsRefused(t *testing.T) {
	d, o := smuggleDoor(t)
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			send := func(t *testing.T, raw string, want ...int) {
				t.Helper()
				before := o.hits.Load()
				c, br := d.rawDial(t, secure)
				io.WriteString(c, raw)
				if got := readStatuses(t, br, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("statuses %v, want %v", got, want)
				}
				readEOF(t, c, br)
				if got := o.hits.Load() - before; got != int64(len(want)-1) {
					t.Fatalf("the origin saw %d requests, want %d", got, len(want)-1)
				}
			}
			t.Run("first", func(t *testing.T) { send(t, smuggleCLTE, 400) })
			t.Run("pipelined second", func(t *testing.T) { send(t, smuggleGet+smuggleCLTE, 200, 400) })
			t.Run("keep-alive second", func(t *testing.T) {
				before := o.hits.Load()
				c, br := d.rawDial(t, secure)
				io.WriteString(c, smuggleGet)
				if got := readStatuses(t, br, 1); got[0] != 200 {
					t.Fatalf("first: %d", got[0])
				}
				io.WriteString(c, smuggleCLTE)
				if got := readStatuses(t, br, 1); got[0] != 400 {
					t.Fatalf("second: %d, want 400", got[0])
				}
				readEOF(t, c, br)
				if got := o.hits.Load() - before; got != 1 {
					t.Fatalf("the origin saw %d requests, want 1", got)
				}
			})
		})
	}
}

func TestChunkedAndLookalikeBodiesServed(t *testing.T) {
	d, _ := smuggleDoor(t)
	body := "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	lookalike := fmt.Sprintf("POST /text HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	for _, secure := range []bool{false, true} {
		c, br := d.rawDial(t, secure)
		for _, tc := range []struct {
			raw  string
			want []string
		}{
			{smuggleChunk, []string{`POST /chunked "hello"`}},
			{lookalike, []string{fmt.Sprintf("POST /text %q", body)}},
			{smuggleGet + smuggleChunk + smuggleGet, []string{`GET /first ""`, `POST /chunked "hello"`, `GET /first ""`}},
		} {
			io.WriteString(c, tc.raw)
			for _, want := range tc.want {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || res.Close || string(b) != want {
					t.Fatalf("secure=%v: %d close=%v %q, want 200 %q on a kept connection", secure, res.StatusCode, res.Close, b, want)
				}
			}
		}
	}
}

// TestSmuggledAfterCacheHits: a refused request pipelined behind cache hits
// is refused (400 and close) after the hits are answered, and never reaches
// the origin.
func TestSmuggledAfterCacheHits(t *testing.T) {
	f := startCacheDoor(t, Config{})
	f.warm(t, "/a")
	origin := f.origin.hits.Load()
	rc := dialClient(t, f.addr)
	rc.send(get("/a") + get("/a") + smuggleCLTE)
	for i := range 2 {
		if res, body := rc.response("GET"); res.StatusCode != 200 || body != "body of /a" {
			t.Fatalf("hit %d: %d %q", i, res.StatusCode, body)
		}
	}
	if res, _ := rc.response("POST"); res.StatusCode != 400 || !res.Close {
		t.Fatalf("smuggled: %d close=%v, want 400 and close", res.StatusCode, res.Close)
	}
	readEOF(t, rc.c, rc.r)
	if got := f.origin.hits.Load(); got != origin {
		t.Fatalf("the origin saw %d more requests", got-origin)
	}
}
