package engine

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestForwardPathRuleNotBypassedByEncoding sends raw absolute-form requests whose
// paths spell a blocked path differently; the origin must never see them.
func TestForwardPathRuleNotBypassedByEncoding(t *testing.T) {
	var reached []string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.URL.EscapedPath())
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	e := runEngine(t, `
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
rules:
  - {name: no-shorts, path: ["/shorts/*"], action: block}
`)
	proxy := e.Addrs()["forward"][0].String()
	for _, p := range []string{"/shorts/a", "/%73horts/a", "//shorts/a", "/shorts//a", "/%2Fshorts/a"} {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin.URL, p, origin.Listener.Addr())
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 403") && !strings.HasPrefix(string(b), "HTTP/1.1 400") {
			t.Errorf("%s: %q", p, strings.SplitN(string(b), "\r\n", 2)[0])
		}
	}
	if len(reached) != 0 {
		t.Fatalf("the origin saw %v", reached)
	}
	if resp, err := (&http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + proxy))}}).Get(origin.URL + "/watch"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("allowed path: %v %v", resp, err)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
