package forward

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/tunnel"
)

// The proxy is served as the engine serves it, on internal/h1
// (startProxy): a request with both Content-Length and Transfer-Encoding gets
// 400 and a closed connection, and never reaches the origin.

// echoOrigin answers with the method, path and body it read, and counts requests.
func echoOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %q", r.Method, r.URL.Path, b)
	}))
	t.Cleanup(o.Close)
	return o, &hits
}

// statuses reads n responses on br and returns their codes and last body; a
// 400 must announce the close.
func statuses(t *testing.T, br *bufio.Reader, n int) (codes []int, last string) {
	t.Helper()
	for range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", len(codes)+1, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusBadRequest && !res.Close {
			t.Error("400 without Connection: close")
		}
		codes, last = append(codes, res.StatusCode), string(b)
	}
	return codes, last
}

// closedByProxy asserts that the proxy closes the connection with nothing more.
func closedByProxy(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("want the connection closed, got %q, %v", rest, err)
	}
}

func TestSmuggledRequestRefused(t *testing.T) {
	o, hits := echoOrigin(t)
	tp := startProxy(t, Options{})
	host := strings.TrimPrefix(o.URL, "http://")
	clte := "POST " + o.URL + "/smuggle HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
	get := "GET " + o.URL + "/first HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	cases := []struct {
		name   string
		writes []string
		want   []int
	}{
		{"first", []string{clte}, []int{400}},
		{"keep-alive second", []string{get, clte}, []int{200, 400}},
		{"pipelined second", []string{get + clte}, []int{200, 400}},
		{"origin-form", []string{"POST /x HTTP/1.1\r\nHost: " + tp.addr + "\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"}, []int{400}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			c, br := tp.dialRaw(t)
			var got []int
			for i, w := range tc.writes {
				_, _ = io.WriteString(c, w)
				n := 1
				if i == len(tc.writes)-1 {
					n = len(tc.want) - len(got)
				}
				codes, _ := statuses(t, br, n)
				got = append(got, codes...)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("statuses %v, want %v", got, tc.want)
			}
			closedByProxy(t, c, br)
			oks := int64(0)
			for _, s := range tc.want {
				if s == 200 {
					oks++
				}
			}
			if got := hits.Load() - before; got != oks {
				t.Fatalf("the origin saw %d requests, want %d", got, oks)
			}
		})
	}
}

func TestChunkedAndLookalikeBodiesRelayed(t *testing.T) {
	o, _ := echoOrigin(t)
	tp := startProxy(t, Options{})
	host := strings.TrimPrefix(o.URL, "http://")
	body := "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	c, br := tp.dialRaw(t)
	for _, tc := range []struct{ raw, want string }{
		{"POST " + o.URL + "/chunked HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", `POST /chunked "hello"`},
		{fmt.Sprintf("POST %s/text HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", o.URL, host, len(body), body), fmt.Sprintf("POST /text %q", body)},
		{"GET " + o.URL + "/after HTTP/1.1\r\nHost: " + host + "\r\n\r\n", `GET /after ""`},
	} {
		_, _ = io.WriteString(c, tc.raw)
		if codes, last := statuses(t, br, 1); codes[0] != 200 || last != tc.want {
			t.Fatalf("%d %q, want 200 %q", codes[0], last, tc.want)
		}
	}
}

// TestTunnelTakesTheSocket: a CONNECT tunnel through the guarded listener
// relays the bare *net.TCPConn (kernel-side copies, readWaiter), not the guard.
func TestTunnelTakesTheSocket(t *testing.T) {
	echo := startEcho(t)
	tunnels := tunnel.NewSet()
	tp := startProxy(t, Options{Config: connectPorts(t, "tcp://"+echo.Addr().String()), Tunnels: tunnels})
	resp, c, br := tp.rawRequest(t, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	roundTrip(t, c, br, "a\n")
	if n := tunnels.Len(); n != 1 {
		t.Fatalf("%d tunnels open", n)
	}
	tunnels.Each(func(tn *tunnel.Tunnel) {
		c := tn.Client()
		if _, ok := c.(*net.TCPConn); !ok {
			t.Errorf("the tunnel relays a %T", c)
		}
	})
}

// roundTrip writes msg to c and expects the echo back.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != msg {
		t.Fatalf("echo %q %v", line, err)
	}
}
