package reverse

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/internal/pool"
)

func testExchange(remote string) *exchange {
	return &exchange{peer: h1.PeerAddr(remote), remote: remote}
}

// peerString gives the canonical address whatever RemoteAddr spelled.
func TestPeerString(t *testing.T) {
	for remote, want := range map[string]string{
		"127.0.0.1:4000":          "127.0.0.1",
		"[::1]:4000":              "::1",
		"[::ffff:10.0.0.1]:4000":  "10.0.0.1",
		"[2001:DB8::1]:4000":      "2001:db8::1",
		"[2001:db8:0::1]:4000":    "2001:db8::1",
		"not an address":          "invalid IP",
		"[fe80::1%eth0]:4000":     "fe80::1%eth0",
		"192.0.2.7:1":             "192.0.2.7",
		"[::ffff:192.0.2.7]:1234": "192.0.2.7",
	} {
		ex := testExchange(remote)
		if got := ex.peerString(); got != want {
			t.Errorf("RemoteAddr %q: %q, want %q", remote, got, want)
		}
		if ex.peer.IsValid() && ex.peerString() != ex.peer.String() {
			t.Errorf("RemoteAddr %q: differs from netip's %q", remote, ex.peer.String())
		}
	}
	ex := testExchange("192.0.2.7:1234")
	if n := testing.AllocsPerRun(100, func() { _ = ex.peerString() }); n != 0 {
		t.Errorf("peerString of a canonical RemoteAddr allocates %v times", n)
	}
}

// peerRecorder is a ResponseWriter that gives the connection's address
// parsed (peerWriter), as internal/h1's does.
type peerRecorder struct {
	*httptest.ResponseRecorder
	remote string
	addr   netip.Addr
	text   string
}

func (p *peerRecorder) Peer() (string, netip.Addr, string) { return p.remote, p.addr, p.text }

// TestPeerFromEngine: the door takes the client's address from the
// engine's writer (parsed once per connection) when the request's
// RemoteAddr is the one the engine gave, and parses RemoteAddr itself when
// something changed it. (The engine's answer stands out here by naming
// another address than RemoteAddr; before, RemoteAddr was parsed for
// every request.)
func TestPeerFromEngine(t *testing.T) {
	var got []string
	o := newTestOrigin(t, "app", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("X-Forwarded-For"))
	})
	h, err := New(Options{
		Config: Config{Routes: []Route{{Name: "site", Pool: "app"}}},
		Pools:  map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, remote := range []string{"192.0.2.7:1234", "192.0.2.8:1234"} {
		req := httptest.NewRequest(http.MethodGet, "http://app.example.test/x", nil)
		req.RemoteAddr = remote
		w := &peerRecorder{httptest.NewRecorder(), "192.0.2.7:1234", netip.MustParseAddr("198.51.100.9"), "198.51.100.9"}
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	if len(got) != 2 || got[0] != "198.51.100.9" || got[1] != "192.0.2.8" {
		t.Errorf("X-Forwarded-For %q, want the engine's address, then RemoteAddr's", got)
	}
}
