package h1

import (
	"io"
	"net/http"
	"net/netip"
	"testing"
)

// TestPeer: the engine's ResponseWriter gives each request of a connection
// its RemoteAddr parsed once (Peer), as netip would parse it, and the
// address as canonical text; ParsePeer unmaps IPv4-mapped addresses and
// takes the text from RemoteAddr only when it is canonical.
func TestPeer(t *testing.T) {
	type peerer interface {
		Peer() (string, netip.Addr, string)
	}
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		p, ok := w.(peerer)
		if !ok {
			t.Error("the engine's ResponseWriter has no Peer")
			return
		}
		remote, addr, text := p.Peer()
		want := netip.MustParseAddrPort(r.RemoteAddr).Addr().Unmap()
		if remote != r.RemoteAddr || addr != want || text != want.String() {
			t.Errorf("Peer() = %q %v %q for RemoteAddr %q", remote, addr, text, r.RemoteAddr)
		}
		io.WriteString(w, "ok")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	for range 2 {
		if _, body := readResp(t, br, "GET"); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	for remote, want := range map[string]string{
		"127.0.0.1:4000":         "127.0.0.1",
		"[::ffff:10.0.0.1]:4000": "10.0.0.1",
		"[2001:DB8::1]:4000":     "2001:db8::1",
		"[fe80::1%eth0]:4000":    "fe80::1%eth0",
		"not an address":         "",
	} {
		if addr, text := ParsePeer(remote); text != want || (want != "" && addr.String() != want) || (want == "" && addr.IsValid()) {
			t.Errorf("ParsePeer(%q) = %v %q, want %q", remote, addr, text, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParsePeer("192.0.2.7:1234") }); n != 0 {
		t.Errorf("ParsePeer of a canonical address allocates %v times", n)
	}
}
