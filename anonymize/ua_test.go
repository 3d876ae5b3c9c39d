package anonymize

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestAbsentUserAgentStaysAbsent proves, against a real server over HTTP/1.1 and
// HTTP/2, that net/http adds its default User-Agent unless the header map holds the
// key, and that Profile.Request records an absent User-Agent so that none is sent.
func TestAbsentUserAgentStaysAbsent(t *testing.T) {
	got := make(chan []string, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua, ok := r.Header["User-Agent"]
		if !ok {
			ua = nil
		}
		got <- ua
	})
	h1 := httptest.NewServer(handler)
	defer h1.Close()
	h2 := httptest.NewUnstartedServer(handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()

	for _, srv := range []*httptest.Server{h1, h2} {
		client := srv.Client()
		send := func(p *Profile) []string {
			t.Helper()
			req, err := http.NewRequest("GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p != nil {
				p.Request(req, netip.MustParseAddr("192.0.2.7"))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return <-got
		}
		if ua := send(nil); len(ua) != 1 || ua[0] == "" {
			t.Fatalf("%s: without the profile net/http should add its default User-Agent, got %q", srv.URL, ua)
		}
		for _, p := range []*Profile{Elite(), Anonymous(), Transparent()} {
			if ua := send(p); ua != nil {
				t.Errorf("%s via %s: origin received User-Agent %q, want none", srv.URL, p.Name(), ua)
			}
		}
	}
}
