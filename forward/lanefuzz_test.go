package forward

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/httpguard"
	"github.com/portcullis/portcullis/internal/lane"
)

// laneTakes is what the lane decides about a buffer holding exactly one
// request head: the request it serves, or nil when it hands the connection
// to net/http.
func laneTakes(head []byte) *http.Request {
	if !laneTakesPrefix(head) || lane.Head(head, false) != len(head) {
		return nil
	}
	lc := &laneConn{remote: "192.0.2.1:1234"}
	return lc.parse(head)
}

// FuzzLaneTakesOnlyWhatNetHTTPServes holds the lane's reading of a request
// head to net/http's: whatever the lane takes, net/http's server (guarded by
// internal/httpguard, as the engine serves it) accepts too, and hands the
// door the same method, URL, Host, header fields and Connection: close.
func FuzzLaneTakesOnlyWhatNetHTTPServes(f *testing.F) {
	for _, s := range []string{
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"HEAD http://example.com:8080/a?b=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET http://EXAMPLE.com/%41?x#y HTTP/1.1\r\nhost: example.com\r\nPragma: no-cache\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nX-Sp : 1\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
		"GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]\r\nConnection: keep-alive, close\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nX: a\tb \r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET http://u@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET  http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET http://example.com/ HTTP/1.1 \r\nHost: example.com\r\n\r\n",
	} {
		f.Add(s)
	}
	got := make(chan *http.Request, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(httpguard.NewListener(ln, nil)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.Error(err)
		}
	}()
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, head string) {
		lr := laneTakes([]byte(head))
		if lr == nil {
			return
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: taken by the lane, but net/http answered nothing: %v", head, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: taken by the lane, but net/http answered %d", head, resp.StatusCode)
		}
		nr := <-got
		if lr.Method != nr.Method || lr.URL.String() != nr.URL.String() || lr.Host != nr.Host ||
			lr.Close != nr.Close || lr.RequestURI != nr.RequestURI || !reflect.DeepEqual(lr.Header, nr.Header) {
			t.Fatalf("%q:\nlane     %s %s host %q close %v %v\nnet/http %s %s host %q close %v %v", head,
				lr.Method, lr.URL, lr.Host, lr.Close, lr.Header, nr.Method, nr.URL, nr.Host, nr.Close, nr.Header)
		}
		if !strings.HasPrefix(head, lr.Method+" ") {
			t.Fatalf("%q: read as %s", head, lr.Method)
		}
	})
}
