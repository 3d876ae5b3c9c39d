package reverse

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/pool"
)

// TestAccessLogRecordsClientHeaders: the reverse door's entries carry the
// request's Referer, User-Agent and protocol version (HTTP/1.0 logged as
// such). On bc21481 they were empty, so the combined format always ended
// "-" "-" and printed HTTP/1.1 for every request.
func TestAccessLogRecordsClientHeaders(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	log := &recordLog{}
	cfg := Config{Routes: []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "app"}}}
	d := startDoor(t, cfg, pools, Options{Log: log})
	const ua, ref = "TestAgent/1.0 (reverse)", "https://search.example/?q=app"
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		c, err := net.Dial("tcp", d.plain)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.WriteString(c, "GET /page "+proto+"\r\nHost: app.example.test\r\nUser-Agent: "+ua+"\r\nReferer: "+ref+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", proto, resp.StatusCode)
		}
	}
	waitFor(t, "two log entries", func() bool { return len(log.entries()) == 2 })
	for i, want := range []string{"HTTP/1.1", "HTTP/1.0"} {
		if e := log.entries()[i]; e.Proto != want || e.UserAgent != ua || e.Referer != ref {
			t.Errorf("entry %d: Proto %q, User-Agent %q, Referer %q", i, e.Proto, e.UserAgent, e.Referer)
		}
	}
}

// TestLogURLAsRequestURI: the access log's URL is scheme://host followed by
// the request URI as net/url writes it (escaped path, query, "?" alone, an
// opaque target), whether built or reused from the request before, and a
// URL that differs from the last only in its query is not taken for it.
func TestLogURLAsRequestURI(t *testing.T) {
	h := &Handler{}
	targets := []string{"/cacheable", "/cacheable", "/cacheable?a=1", "/cacheable?a=1", "/cacheable?", "/cacheable",
		"/caf%C3%A9?x=%20", "/a%2Fb", "/a b", "http://example.test/abs?q", "*", "/cacheable?a=2", "/cacheable?a=1"}
	for _, target := range targets {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		for _, opaque := range []string{"", "//other.test/x"} {
			v := *u
			v.Opaque = opaque
			want := "https://site.test" + v.RequestURI()
			if got := h.logURL("https", "site.test", &v); got != want {
				t.Errorf("%q (opaque %q): %q, want %q", target, opaque, got, want)
			}
		}
	}
}

// countLog is a recordLog that reads no details (accesslog.DetailLogger),
// as the admin counters are.
type countLog struct{ recordLog }

func (*countLog) WantsDetail() bool { return false }

// TestAccessLogDetailsOnlyWhenRead: the door looks up an entry's details
// (Referer, User-Agent, Content-Type) only when a logger reads them. With
// the access log off, the loggers left (the status page and metrics)
// read none, and still get the counting fields; a fan-out with one logger
// that reads them gets them all. (Before, every entry had them looked up.)
func TestAccessLogDetailsOnlyWhenRead(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	cfg := Config{Routes: []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "app"}}}
	counts, written := &countLog{}, &recordLog{}
	only := startDoor(t, cfg, pools, Options{Log: accesslog.Multi(counts, &countLog{})})
	both := startDoor(t, cfg, pools, Options{Log: accesslog.Multi(&countLog{}, written)})
	const ua, ref = "TestAgent/1.0 (detail)", "https://search.example/"
	for _, d := range []*door{only, both} {
		c, err := net.Dial("tcp", d.plain)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.WriteString(c, "GET /page HTTP/1.1\r\nHost: app.example.test\r\nUser-Agent: "+ua+"\r\nReferer: "+ref+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		c.Close()
	}
	waitFor(t, "the entries", func() bool { return len(counts.entries()) == 1 && len(written.entries()) == 1 })
	if e := counts.entries()[0]; e.UserAgent != "" || e.Referer != "" || e.ContentType != "" ||
		e.Status != http.StatusOK || e.BytesOut == 0 || e.Pool != "app" || e.Proto != "HTTP/1.1" || !e.Client.IsValid() {
		t.Errorf("entry without a written log: %+v", e)
	}
	if e := written.entries()[0]; e.UserAgent != ua || e.Referer != ref || e.ContentType == "" || e.Status != http.StatusOK {
		t.Errorf("entry with a written log: %+v", e)
	}
}
