package admin

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// logDoors feeds s one of each door and protocol the status page tells apart.
func logDoors(s *Status) {
	proto := func(p string, tls bool) func(*accesslog.Entry) {
		return func(e *accesslog.Entry) { e.Proto, e.TLS = p, tls }
	}
	for range 3 {
		s.Log(entry("forward", "GET", "http://a.example/", "allow", 200, proto("HTTP/1.1", false)))
	}
	s.Log(entry("forward", "GET", "http://a.example/", "allow", 407, proto("HTTP/1.1", false)))
	s.Log(entry("forward", "CONNECT", "a.example:443", "tunnel", 200, proto("HTTP/2.0", true)))
	s.Log(entry("forward", "GET", "http://b.example/", "block", 403, proto("HTTP/2.0", true)))
	s.Log(entry("forward", "CONNECT", "a.example:443", "tunnel", 200, proto("HTTP/1.1", true)))
	s.Log(entry("forward", "CONNECT", "a.example:443", "allow", 200, nil)) // an inspected CONNECT: no protocol recorded
	// socks: 5 tunnels: one through, one blocked, two refused at sign-in, one failed dial
	s.Log(entry("socks", "CONNECT", "a.example:443", "allow", 200, proto("SOCKS5", false)))
	s.Log(entry("socks", "CONNECT", "b.example:443", "block", 403, proto("SOCKS5", false)))
	s.Log(entry("socks", "CONNECT", "a.example:443", "allow", 407, proto("SOCKS5", false)))
	s.Log(entry("socks", "CONNECT", "a.example:443", "allow", 429, proto("SOCKS5", false)))
	s.Log(entry("socks", "CONNECT", "a.example:443", "allow", 502, proto("SOCKS5", false)))
	s.Log(entry("reverse", "GET", "http://shop.example/", "allow", 200, proto("HTTP/1.1", false)))
	s.Log(entry("reverse", "GET", "https://shop.example/", "allow", 200, proto("HTTP/2.0", false)))
	s.Log(entry("reverse", "GET", "https://shop.example/", "allow", 200, proto("HTTP/3.0", false)))
	s.Log(entry("reverse", "GET", "https://shop.example/", "allow", 503, proto("HTTP/3.0", false)))
	s.Log(entry("dns", "A", "ads.example.", "block", 0, proto("udp", false)))
	s.Log(entry("dns", "A", "a.example.", "allow", 0, proto("udp", false)))
	s.Log(entry("dns", "A", "a.example.", "allow", dnsRefused, proto("udp", false)))
	s.Log(entry("dns", "A", "a.example.", "allow", 3, proto("tcp", false))) // NXDOMAIN: an answer
	s.Log(entry("dns", "A", "a.example.", "allow", dnsServFail, proto("tcp", false)))
}

// wantDoors is what logDoors counts.
var wantDoors = []DoorCount{
	{Door: "forward", Proto: "(unknown)", Requests: 1},
	{Door: "forward", Proto: "HTTP/1.1", Requests: 4, Refused: 1},
	{Door: "forward", Proto: "HTTP/1.1", TLS: true, Requests: 1},
	{Door: "forward", Proto: "HTTP/2.0", TLS: true, Requests: 2, Blocked: 1},
	{Door: "socks", Proto: "SOCKS5", Requests: 5, Blocked: 1, Refused: 2, Errors: 1},
	{Door: "reverse", Proto: "HTTP/1.1", Requests: 1},
	{Door: "reverse", Proto: "HTTP/2.0", TLS: true, Requests: 1},
	{Door: "reverse", Proto: "HTTP/3.0", TLS: true, Requests: 2, Errors: 1},
	{Door: "dns", Proto: "udp", Requests: 3, Blocked: 1, Refused: 1},
	{Door: "dns", Proto: "tcp", Requests: 2, Errors: 1},
}

// TestStatusDoors: /status.json's doors and the page's Doors card (rendered
// by the server, for a browser without JavaScript) count each door and
// protocol since start, TLS apart, blocked, refused and failed apart; the
// tunnels open now come from the snapshot.
func TestStatusDoors(t *testing.T) {
	s, c := newTestStatus()
	logDoors(s)
	c.advance(time.Hour) // since start: not a window
	srv := httptest.NewServer(NewServer(ServerOptions{Status: s, Snapshot: func() Snapshot { return Snapshot{TunnelsOpen: 4} }}))
	defer srv.Close()

	code, body, _ := get(t, srv.URL+"/status.json", nil)
	var doc struct {
		Traffic     struct{ Doors []DoorCount }
		TunnelsOpen int `json:"tunnels_open"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
		t.Fatalf("/status.json: %d %v\n%s", code, err, body)
	}
	if !reflect.DeepEqual(doc.Traffic.Doors, wantDoors) {
		t.Errorf("doors:\n got %+v\nwant %+v", doc.Traffic.Doors, wantDoors)
	}
	if doc.TunnelsOpen != 4 {
		t.Errorf("tunnels_open %d, want 4", doc.TunnelsOpen)
	}

	code, page, _ := get(t, srv.URL+"/", nil)
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	_, tbody, _ := strings.Cut(page, `<tbody id="doors">`)
	tbody, _, _ = strings.Cut(tbody, "</tbody>")
	var rows []string
	for _, d := range wantDoors {
		name := d.Door
		if d.TLS {
			name += " (TLS)"
		}
		rows = append(rows, fmt.Sprintf(`<tr><td class="pool">%s</td><td class="mono">%s</td><td class="n">%d</td><td class="n">%d</td><td class="n">%d</td><td class="n">%d</td></tr>`,
			name, d.Proto, d.Requests, d.Blocked, d.Refused, d.Errors))
	}
	if want := strings.Join(rows, ""); tbody != want {
		t.Errorf("Doors card:\n got %s\nwant %s", tbody, want)
	}
	if !strings.Contains(page, `<b id="tunnels-open">4</b>`) {
		t.Error("the page does not show 4 tunnels open")
	}
}

// TestStatusDoorsBounded: doors and protocols outside the known set count
// under (other), so strange entries cannot grow the counters.
func TestStatusDoorsBounded(t *testing.T) {
	s, _ := newTestStatus()
	for i := range 1000 {
		s.Log(entry(fmt.Sprintf("door-%d", i), "GET", "http://a.example/", "allow", 200, func(e *accesslog.Entry) { e.Proto = fmt.Sprintf("HTTP/%d", i) }))
		s.Log(entry("forward", "GET", "http://a.example/", "allow", 200, func(e *accesslog.Entry) { e.Proto = fmt.Sprintf("SPDY/%d", i) }))
	}
	want := []DoorCount{
		{Door: "forward", Proto: "(other)", Requests: 1000},
		{Door: "(other)", Proto: "(other)", Requests: 1000},
	}
	if got := s.Report().Doors; !reflect.DeepEqual(got, want) {
		t.Errorf("doors %+v, want %+v", got, want)
	}
	if got := NewStatus(nil).Report().Doors; got == nil || len(got) != 0 {
		t.Errorf("no traffic: doors %#v, want an empty list (JSON [])", got)
	}
}
