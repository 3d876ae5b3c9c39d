package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// egressProbe sends one proxy request (GET to target, or CONNECT to target's
// host:port) through the forward door at proxy and returns the status.
func egressProbe(t *testing.T, proxy, method, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	raw := "GET " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
	if method == http.MethodConnect {
		raw = "CONNECT " + u.Host + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(hostport, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEgressRefusesOwnListeners (issue 16 item 13): with all of loopback allowed,
// a forward client still cannot reach the proxy's own admin listener, its own
// forward door or a listener added by a reload, for HTTP and CONNECT; and an
// allowance with ports lets only those ports through. On bc21481 the admin page
// answered through the proxy and "CIDR:ports" did not parse.
func TestEgressRefusesOwnListeners(t *testing.T) {
	var hits, otherHits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer origin.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	defer other.Close()
	oport, xport := portOf(t, origin.URL), portOf(t, other.URL)

	dir := t.TempDir()
	policy := func(connectPorts, allow, extra string) string {
		return fmt.Sprintf("forward: {listen: [\"127.0.0.1:0\"], connect_ports: [%s]}\nresolver: {egress: {allow: [%s]}}\nadmin: {listen: \"127.0.0.1:0\"}\n%s",
			connectPorts, allow, extra)
	}
	e, cancel, done := launch(t, dir, policy(oport+", "+xport, `"127.0.0.0/8"`, ""), nil)
	defer func() { cancel(); <-done }()
	fwd, adm := addr(t, e, "forward"), addr(t, e, "admin")
	// connect_ports naming the listeners' ports, so CONNECT reaches the guard.
	ports := strings.Join([]string{oport, xport, portOf(t, fwd), portOf(t, adm)}, ", ")
	reload := func(p string) {
		t.Helper()
		writeFile(t, dir+"/policy.yaml", p)
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload(policy(ports, `"127.0.0.0/8"`, ""))

	if got := egressProbe(t, fwd, http.MethodGet, origin.URL+"/"); got != 200 || hits.Load() != 1 {
		t.Fatalf("an allowed loopback origin: %d (hits %d)", got, hits.Load())
	}
	for _, target := range []string{"http://" + adm + "/", "http://" + fwd + "/"} {
		for _, m := range []string{http.MethodGet, http.MethodConnect} {
			if got := egressProbe(t, fwd, m, target); got != http.StatusForbidden {
				t.Errorf("%s %s (the proxy's own listener) with 127.0.0.0/8 allowed: %d, want 403", m, target, got)
			}
		}
	}
	// The admin listener on another loopback spelling is refused too.
	if got := egressProbe(t, fwd, http.MethodGet, "http://[::ffff:127.0.0.1]:"+portOf(t, adm)+"/"); got != http.StatusForbidden {
		t.Errorf("admin through an IPv4-mapped spelling: %d, want 403", got)
	}

	// A listener added by a reload is refused as soon as it is bound.
	reload(policy(ports, `"127.0.0.0/8"`, "reverse: {listen: [\"127.0.0.1:0\"], routes: []}\n"))
	rev := addr(t, e, "reverse")
	if got := egressProbe(t, fwd, http.MethodGet, "http://"+rev+"/"); got != http.StatusForbidden {
		t.Errorf("GET to the reverse door added by a reload: %d, want 403", got)
	}

	// Ports: 127.0.0.1/32:OPORT lets the origin through and nothing else.
	reload(policy(ports, `"127.0.0.1/32:`+oport+`"`, ""))
	for _, m := range []string{http.MethodGet, http.MethodConnect} {
		if got := egressProbe(t, fwd, m, origin.URL+"/"); got != 200 {
			t.Errorf("%s to the allowed port: %d", m, got)
		}
		if got := egressProbe(t, fwd, m, other.URL+"/"); got != http.StatusForbidden {
			t.Errorf("%s to a loopback port outside the allowance: %d, want 403", m, got)
		}
	}
	if otherHits.Load() != 0 {
		t.Errorf("the origin outside the allowance was reached %d times", otherHits.Load())
	}
}
