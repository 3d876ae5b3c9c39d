package forward

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/rules"
)

// TestAccessLogRecordsClientHeaders: the access log records the Referer and
// User-Agent the client sent (before the profile rewrote them) and the
// request's real protocol version, for HTTP/1.1 and HTTP/1.0; under a profile with anonymous_log (the built-in privacy profile)
// it records neither. The combined and JSON lines carry them. On bc21481 every
// combined line ended "-" "-" and an HTTP/1.0 request was logged as HTTP/1.1.
func TestAccessLogRecordsClientHeaders(t *testing.T) {
	o := newRecordingOrigin(t)
	profiles := map[string]Anonymizer{"elite": anonymize.Elite(), "privacy": anonymize.Privacy()}
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		v := rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
		if strings.HasPrefix(f.Path, "/private") {
			v.Profile = "privacy"
		}
		return v
	})
	tp := startProxy(t, Options{Config: &Config{Profile: "elite"}, Policy: policy,
		Anonymizer: func(name string) Anonymizer { return profiles[name] }})
	host := o.Listener.Addr().String()
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Safari/537.36"
	const ref = "http://news.example/front?id=7"
	send := func(raw string) accesslog.Entry {
		t.Helper()
		resp, _, _ := tp.rawRequest(t, raw)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d for %q", resp.StatusCode, raw)
		}
		return tp.log.next(t)
	}
	hdrs := "Host: " + host + "\r\nUser-Agent: " + ua + "\r\nReferer: " + ref + "\r\n"
	var entries []accesslog.Entry
	for _, tc := range []struct{ name, raw, proto string }{
		{"GET", "GET " + o.URL + "/a HTTP/1.1\r\n" + hdrs + "\r\n", "HTTP/1.1"},
		{"goproxy POST", "POST " + o.URL + "/b HTTP/1.1\r\n" + hdrs + "Content-Length: 2\r\nConnection: close\r\n\r\nhi", "HTTP/1.1"},
		{"HTTP/1.0 GET", "GET " + o.URL + "/c HTTP/1.0\r\n" + hdrs + "\r\n", "HTTP/1.0"},
	} {
		e := send(tc.raw)
		if e.UserAgent != ua || e.Referer != ref || e.Proto != tc.proto {
			t.Errorf("%s: entry has User-Agent %q, Referer %q, Proto %q", tc.name, e.UserAgent, e.Referer, e.Proto)
		}
		entries = append(entries, e)
	}
	e := send("GET " + o.URL + "/private HTTP/1.1\r\n" + hdrs + "\r\n")
	if e.UserAgent != "" || e.Referer != "" || e.Proto != "HTTP/1.1" {
		t.Errorf("privacy profile (anonymous_log): entry has User-Agent %q, Referer %q, Proto %q", e.UserAgent, e.Referer, e.Proto)
	}
	if got := o.seen().Get("User-Agent"); got == ua {
		t.Errorf("the privacy profile sent the client's agent upstream: %q", got)
	}
	entries = append(entries, e)

	for format, want := range map[accesslog.Format][]string{
		accesslog.FormatCombined: {
			`"GET ` + o.URL + `/a HTTP/1.1" 200 2 "` + ref + `" "` + ua + `"`,
			`"GET ` + o.URL + `/c HTTP/1.0" 200 2 "` + ref + `" "` + ua + `"`,
			`"GET ` + o.URL + `/private HTTP/1.1" 200 2 "-" "-"`,
		},
		accesslog.FormatJSON: {`"proto":"HTTP/1.0","referer":"` + ref + `","user_agent":"` + ua + `"`},
	} {
		var buf bytes.Buffer
		al, err := accesslog.NewWriter(accesslog.Config{Format: format}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for i := range entries {
			al.Log(&entries[i])
		}
		if err := al.Close(); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s log lacks %s:\n%s", format, w, buf.String())
			}
		}
	}
}
