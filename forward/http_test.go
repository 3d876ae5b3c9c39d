package forward

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/rules"
)

func TestHTTPGetRelaysAndLogs(t *testing.T) {
	body := bytes.Repeat([]byte("portcullis "), 10000)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin", "yes")
		_, _ = w.Write(body)
	}))
	defer origin.Close()
	tp := startProxy(t, Options{})
	resp, err := tp.client(t).Get(origin.URL + "/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) || resp.StatusCode != 200 || resp.Header.Get("X-Origin") != "yes" {
		t.Fatalf("status %d, %d bytes (want %d), err %v", resp.StatusCode, len(got), len(body), err)
	}
	e := tp.log.next(t)
	if e.Door != "forward" || e.Method != "GET" || e.URL != origin.URL+"/path?q=1" || e.Status != 200 ||
		e.BytesOut != int64(len(body)) || e.Action != "allow" || e.Rule != "default" || e.Client != netip.MustParseAddr("127.0.0.1") || e.Duration <= 0 {
		t.Fatalf("access log entry %+v", e)
	}
}

func TestEveryMethodWithBodies(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		_, _ = w.Write(append([]byte(r.Method+":"), b...))
	}))
	defer origin.Close()
	tp := startProxy(t, Options{})
	c := tp.client(t)
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"} {
		req, _ := http.NewRequest(m, origin.URL+"/x", strings.NewReader("payload-"+m))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != m+":payload-"+m || resp.Header.Get("X-Method") != m {
			t.Errorf("%s: got %q", m, got)
		}
		if e := tp.log.next(t); e.BytesIn != int64(len("payload-"+m)) {
			t.Errorf("%s: logged BytesIn %d", m, e.BytesIn)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, origin.URL+"/x", nil)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Method") != "HEAD" {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
}

// recordingOrigin keeps the headers of the last request it saw.
type recordingOrigin struct {
	*httptest.Server
	mu     sync.Mutex
	header http.Header
	remote string
}

func newRecordingOrigin(t *testing.T) *recordingOrigin {
	o := &recordingOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.header = r.Header.Clone()
		o.remote = r.RemoteAddr
		o.mu.Unlock()
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Resp-End", "kept")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *recordingOrigin) seen() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.header
}

func TestHopByHopAndProxyHeadersNeverArrive(t *testing.T) {
	o := newRecordingOrigin(t)
	tp := startProxy(t, Options{})
	raw := "GET " + o.URL + "/h HTTP/1.1\r\nHost: " + o.Listener.Addr().String() + "\r\n" +
		"Connection: keep-alive, X-Hop-Custom\r\nX-Hop-Custom: 1\r\nKeep-Alive: timeout=5\r\n" +
		"Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\n" +
		"Upgrade: h2c\r\nTrailer: X-T\r\nX-End-To-End: kept\r\n\r\n"
	resp, _, _ := tp.rawRequest(t, raw)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	h := o.seen()
	for _, name := range []string{"Connection", "X-Hop-Custom", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection",
		"Te", "Upgrade", "Trailer", "X-Forwarded-For", "Forwarded", "Via", "X-Real-Ip", "User-Agent", "Accept-Encoding", LoopHeader} {
		if v, ok := h[name]; ok {
			t.Errorf("origin received %s: %q", name, v)
		}
	}
	if h.Get("X-End-To-End") != "kept" {
		t.Errorf("end-to-end header lost: %v", h)
	}
	for _, name := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("client received response hop header %s: %q", name, v)
		}
	}
	if resp.Header.Get("X-Resp-End") != "kept" {
		t.Errorf("response end-to-end header lost: %v", resp.Header)
	}
}

func TestClientAcceptEncodingAndUserAgentKept(t *testing.T) {
	o := newRecordingOrigin(t)
	tp := startProxy(t, Options{})
	raw := "GET " + o.URL + "/ HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br, zstd\r\nUser-Agent: TestBrowser/1\r\n\r\n"
	resp, _, _ := tp.rawRequest(t, raw)
	resp.Body.Close()
	h := o.seen()
	if h.Get("Accept-Encoding") != "br, zstd" || h.Get("User-Agent") != "TestBrowser/1" {
		t.Fatalf("origin saw Accept-Encoding %q, User-Agent %q", h.Get("Accept-Encoding"), h.Get("User-Agent"))
	}
}

// fakeAnonymizer records what the door hands it.
type fakeAnonymizer struct {
	mu       sync.Mutex
	profiles []string
}

type fakeProfile struct{ name string }

func (f fakeProfile) Request(r *http.Request, client netip.Addr) {
	r.Header.Del("X-Forwarded-For")
	r.Header.Set("X-Profile", f.name+"/"+client.String())
}
func (f fakeProfile) Response(resp *http.Response) { resp.Header.Set("X-Profile-Resp", f.name) }

func (fa *fakeAnonymizer) get(name string) Anonymizer {
	fa.mu.Lock()
	fa.profiles = append(fa.profiles, name)
	fa.mu.Unlock()
	return fakeProfile{name}
}

func TestAnonymizerProfileFromVerdictOrConfig(t *testing.T) {
	o := newRecordingOrigin(t)
	fa := &fakeAnonymizer{}
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		if f.Path == "/special" {
			return rules.Verdict{Action: rules.ActionAllow, Rule: "r", Profile: "privacy"}
		}
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
	tp := startProxy(t, Options{Config: &Config{Profile: "elite"}, Policy: policy, Anonymizer: fa.get})
	c := tp.client(t)
	for path, want := range map[string]string{"/plain": "elite", "/special": "privacy"} {
		req, _ := http.NewRequest("GET", o.URL+path, nil)
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := o.seen().Get("X-Profile"); got != want+"/127.0.0.1" || o.seen().Get("X-Forwarded-For") != "" {
			t.Errorf("%s: origin saw X-Profile %q, XFF %q", path, got, o.seen().Get("X-Forwarded-For"))
		}
		if resp.Header.Get("X-Profile-Resp") != want {
			t.Errorf("%s: response profile %q", path, resp.Header.Get("X-Profile-Resp"))
		}
	}
}

func TestHostHeaderCannotRedirect(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		mu.Lock()
		seen = append(seen, f.Host)
		mu.Unlock()
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
	tp := startProxy(t, Options{Policy: policy})
	var host string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host = r.Host }))
	defer origin.Close()
	raw := "GET " + origin.URL + "/ HTTP/1.1\r\nHost: blocked.example\r\n\r\n"
	resp, _, _ := tp.rawRequest(t, raw)
	resp.Body.Close()
	if host != origin.Listener.Addr().String() || seen[0] != "127.0.0.1" {
		t.Fatalf("origin saw Host %q, policy saw %v", host, seen)
	}
}

func TestBlockPageHTMLAndText(t *testing.T) {
	tp := startProxy(t, Options{Policy: hostPolicy("no-games", "games.example"), Config: &Config{Contact: "Ask the IT office"}})
	c := tp.client(t)
	req, _ := http.NewRequest("GET", "http://www.games.example/play?x=<b>", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"www.games.example/play?x=&lt;b&gt;", "no-games", "testing", "Blocked for the test &lt;games.example&gt;", "Ask the IT office"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("HTML block page lacks %q:\n%s", want, page)
		}
	}
	if e := tp.log.next(t); e.Action != "block" || e.Rule != "no-games" || e.Status != 403 {
		t.Errorf("log %+v", e)
	}

	req, _ = http.NewRequest("GET", "http://games.example/", nil)
	req.Header.Set("Accept", "*/*")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!bytes.Contains(text, []byte("Rule: no-games\n")) || !bytes.Contains(text, []byte("URL: http://games.example/\n")) {
		t.Fatalf("text block page %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), text)
	}
}

func TestQuietBlockIs204(t *testing.T) {
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		return rules.Verdict{Action: rules.ActionBlock, Rule: "trackers", Quiet: true}
	})
	tp := startProxy(t, Options{Policy: policy})
	resp, err := tp.client(t).Get("http://tracker.example/pixel.gif")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 || len(b) != 0 {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

func TestPolicyPanicFailsClosed(t *testing.T) {
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict { panic("boom") })
	tp := startProxy(t, Options{Policy: policy})
	resp, err := tp.client(t).Get("http://any.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestClientNotAllowedRefusedOnEveryPath(t *testing.T) {
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("origin reached by a refused client")
	}))
	defer origin.Close()
	tp := startProxy(t, Options{Logger: logger, Config: &Config{AllowClients: []netip.Prefix{netip.MustParsePrefix("::1/128")}}})
	resp, err := tp.client(t).Get(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("HTTP: status %d", resp.StatusCode)
	}
	resp, _, _ = tp.rawRequest(t, "CONNECT "+origin.Listener.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 403 {
		t.Fatalf("CONNECT: status %d", resp.StatusCode)
	}
	resp, _, _ = tp.rawRequest(t, "GET /proxy.pac HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 403 {
		t.Fatalf("local: status %d", resp.StatusCode)
	}
	for range 3 {
		if e := tp.log.next(t); e.Status != 403 || e.Action != "block" || e.Rule != "allow_clients" {
			t.Errorf("log %+v", e)
		}
	}
	if n := strings.Count(logBuf.String(), "client not allowed"); n != 3 {
		t.Errorf("%d warning lines, want 3:\n%s", n, logBuf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLoopRefusedWith508(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("origin reached through a loop")
	}))
	defer origin.Close()
	// The proxy's upstream transport sends everything to the proxy itself: a
	// parent-proxy loop. The second pass must refuse; the first relays the 508.
	selfURL := make(chan string, 1)
	tr := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		u := <-selfURL
		selfURL <- u
		return url.Parse(u)
	}}
	defer tr.CloseIdleConnections()
	parent := rules.EvaluatorFunc(func(*rules.Facts) rules.Verdict {
		return rules.Verdict{Action: rules.ActionAllow, Rule: "via-parent", Pool: "parents"}
	})
	tp := startProxy(t, Options{Transport: tr, Policy: parent})
	selfURL <- tp.url.String()
	resp, err := tp.client(t).Get(origin.URL + "/loop")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusLoopDetected || !bytes.Contains(b, []byte("loop")) {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

func TestDirectRequestToItselfDoesNotRecurse(t *testing.T) {
	tp := startProxy(t, Options{})
	resp, err := tp.client(t).Get(tp.url.String() + "/self")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !bytes.Contains(b, []byte("proxy server")) {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	// Two entries: the relayed request and the local one it became.
	local, relayed := tp.log.next(t), tp.log.next(t)
	if local.URL != "/self" || relayed.URL != tp.url.String()+"/self" || relayed.Status != 404 {
		t.Fatalf("log %+v / %+v", local, relayed)
	}
}

func TestUpstreamFailuresGiveShortPages(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	tp := startProxy(t, Options{Config: &Config{ResponseHeaderTimeout: 300 * time.Millisecond}})
	c := tp.client(t)
	dead := freePort(t)
	for _, tc := range []struct {
		url    string
		status int
	}{
		{"http://" + dead + "/", http.StatusBadGateway},
		{slow.URL + "/", http.StatusGatewayTimeout},
	} {
		resp, err := c.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.url, resp.StatusCode, tc.status)
		}
		for _, leak := range []string{"127.0.0.1", "refused", "dial", "timeout awaiting"} {
			if bytes.Contains(b, []byte(leak)) {
				t.Errorf("%s: page leaks %q: %s", tc.url, leak, b)
			}
		}
		if e := tp.log.next(t); e.Status != tc.status || e.Error == "" {
			t.Errorf("%s: log %+v", tc.url, e)
		}
	}
}

func TestRelativeURLGetsLocalPage(t *testing.T) {
	tp := startProxy(t, Options{})
	resp, _, _ := tp.rawRequest(t, "GET / HTTP/1.1\r\nHost: "+"proxy\r\n\r\n")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 404 || !bytes.Contains(b, []byte("proxy server")) {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "pac:"+r.URL.Path) })
	tp = startProxy(t, Options{Local: local})
	resp, _, _ = tp.rawRequest(t, "GET /proxy.pac HTTP/1.1\r\nHost: proxy\r\n\r\n")
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "pac:/proxy.pac" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

func TestUnsupportedSchemeIs400(t *testing.T) {
	tp := startProxy(t, Options{})
	resp, _, _ := tp.rawRequest(t, "GET ftp://files.example/x HTTP/1.1\r\nHost: files.example\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// wsEchoHandler upgrades to a line-echo protocol (a stand-in for WebSocket framing)
// and answers up to lines lines before closing.
func wsEchoHandler(lines int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		for range lines {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo:" + line)
			_ = brw.Flush()
		}
	})
}

func TestWebSocketUpgradeRelayed(t *testing.T) {
	origin := httptest.NewServer(wsEchoHandler(2))
	defer origin.Close()
	tp := startProxy(t, Options{})
	resp, c, br := tp.rawRequest(t, "GET "+origin.URL+"/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i, msg := range []string{"hello\n", "again\n"} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "echo:"+msg {
			t.Fatalf("got %q, %v", line, err)
		}
		if n := tp.tunnels.Len(); i == 0 && n != 1 { // the origin still waits for the second line
			t.Errorf("WebSocket relay not tracked: Tunnels.Len() = %d", n)
		}
	}
	// The origin closed after echoing: the proxy must close the client side too.
	if rest, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("after origin close: %q, %v (want EOF)", rest, err)
	}
}

// TestQuietBlockAnswersWhatThePageExpects: a quiet (tracker) block answers
// with anonymize.QuietResponse: a 1×1
// transparent GIF for an image, an empty script for a script, 204 for a
// beacon. bc21481 answered 204 to everything, so pages showed broken images.
func TestQuietBlockAnswersWhatThePageExpects(t *testing.T) {
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		return rules.Verdict{Action: rules.ActionBlock, Rule: "tracker:privacy", Quiet: true}
	})
	{
		tp := startProxy(t, Options{Policy: policy})
		c := tp.client(t)
		for _, tc := range []struct {
			dest, ctype string
			status, n   int
		}{
			{"image", "image/gif", http.StatusOK, 43},
			{"script", "text/javascript", http.StatusOK, 0},
			{"empty", "", http.StatusNoContent, 0},
		} {
			req, _ := http.NewRequest(http.MethodGet, "http://tracker.example/t?x=1", nil)
			req.Header.Set("Sec-Fetch-Dest", tc.dest)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype || len(b) != tc.n ||
				(tc.dest == "image" && !strings.HasPrefix(string(b), "GIF89a")) {
				t.Errorf("%s: %d %q %d bytes", tc.dest, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
			}
			if e := tp.log.next(t); e.Action != "block" || e.Status != tc.status {
				t.Errorf("%s: log %+v", tc.dest, e)
			}
		}
	}
}
