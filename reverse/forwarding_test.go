package reverse

import "testing"

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
		ex := &exchange{remote: remote, peer: peerAddr(remote)}
		if got := ex.peerString(); got != want {
			t.Errorf("RemoteAddr %q: %q, want %q", remote, got, want)
		}
		if ex.peer.IsValid() && ex.peerString() != ex.peer.String() {
			t.Errorf("RemoteAddr %q: differs from netip's %q", remote, ex.peer.String())
		}
	}
	ex := &exchange{remote: "192.0.2.7:1234", peer: peerAddr("192.0.2.7:1234")}
	if n := testing.AllocsPerRun(100, func() { _ = ex.peerString() }); n != 0 {
		t.Errorf("peerString of a canonical RemoteAddr allocates %v times", n)
	}
}
