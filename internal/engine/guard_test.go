package engine

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/reverse"
)

// TestEveryListenerRefusesCLTE: on the forward, reverse (plain and TLS) and
// admin listeners, a request with both Content-Length and Transfer-Encoding,
// alone or pipelined behind one served normally, gets 400 and a closed
// connection (internal/h1's parser), and the origin never sees it.
func TestEveryListenerRefusesCLTE(t *testing.T) {
	o := newOrigin(t, "o", nil)
	state := t.TempDir()
	e := runEngine(t, fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
reverse:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  state_dir: %q
  tls: {mode: internal}
  routes:
    - {name: app, host: [app.example.test], pool: app}
pools:
  app:
    members: [{url: %q}]
admin: {listen: "127.0.0.1:0"}
`, state, o.URL))
	pem, err := os.ReadFile(reverse.CACertPath(&reverse.Config{StateDir: state}, ""))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	addrs := e.Addrs()
	originHost := strings.TrimPrefix(o.URL, "http://")
	clte := func(target, host string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
	}
	cases := []struct {
		kind, get, bad string
		secure, origin bool
	}{
		{"forward", "GET " + o.URL + "/a HTTP/1.1\r\nHost: " + originHost + "\r\n\r\n", clte(o.URL+"/s", originHost), false, true},
		{"reverse", "GET /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n", clte("/s", "app.example.test"), false, true},
		{"reverse-tls", "GET /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n", clte("/s", "app.example.test"), true, true},
		{"admin", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", clte("/healthz", "x"), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			addr := addrs[tc.kind][0].String()
			for _, pipelined := range []bool{false, true} {
				before := o.hits.Load()
				var c net.Conn
				if tc.secure {
					c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "app.example.test", NextProtos: []string{"http/1.1"}})
				} else {
					c, err = net.Dial("tcp", addr)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				raw, want := tc.bad, []int{400}
				if pipelined {
					raw, want = tc.get+tc.bad, []int{200, 400}
				}
				io.WriteString(c, raw)
				for _, w := range want {
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("pipelined=%v: %v", pipelined, err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != w || (w == 400 && !res.Close) {
						t.Fatalf("pipelined=%v: %d close=%v, want %d", pipelined, res.StatusCode, res.Close, w)
					}
				}
				if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
					t.Fatalf("pipelined=%v: want the connection closed, got %q %v", pipelined, rest, err)
				}
				if got, wantHits := o.hits.Load()-before, int64(len(want)-1); tc.origin && got != wantHits {
					t.Fatalf("pipelined=%v: the origin saw %d requests, want %d", pipelined, got, wantHits)
				}
			}
		})
	}
}
