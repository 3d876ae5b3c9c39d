package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/filter/filetype"
	"github.com/portcullis/portcullis/filter/phrase"
	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/forward/pac"
	"github.com/portcullis/portcullis/rules"
)

func writeTestFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// htpasswdEntry is a bcrypt htpasswd line at the lowest cost (fast tests).
func htpasswdEntry(t testing.TB, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func TestSchoolConfigValidatePaths(t *testing.T) {
	c := Config{School: School{
		Auth:             auth.Config{GroupFile: "groups"},
		PAC:              &pac.Config{Proxy: "no port"},
		SafeSearch:       filter.SafeSearch{YouTube: "loud"},
		SafeSearchGroups: map[string]filter.SafeSearch{"students": {YouTube: "sometimes"}},
		FileTypes:        filetype.Config{BlockExtensions: []string{"exe"}},
		Phrase:           phrase.Config{Threshold: -5},
		PhraseThresholds: map[string]int{"staff": -2, "students": -1},
	}}
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Path)
	}
	want := []string{"auth.group_file", "pac.proxy", "safesearch.youtube", "safesearch_groups.students.youtube",
		"file_types.block_extensions[0]", "phrase.threshold", "phrase_thresholds.staff"}
	if !slices.Equal(got, want) {
		t.Fatalf("problems at %q, want %q", got, want)
	}
	ok := Config{School: School{PAC: &pac.Config{}, PhraseThresholds: map[string]int{"staff": PhraseOff}}}
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("valid school config rejected: %v", errs)
	}
}

// TestSchoolAuth407ThenSuccess: no or wrong credentials get 407 with a challenge,
// good ones reach the origin without Proxy-Authorization, with the user and the
// group file's groups in the facts and the log; repeated failures get 429.
func TestSchoolAuth407ThenSuccess(t *testing.T) {
	dir := t.TempDir()
	htp := writeTestFile(t, dir, "htpasswd", htpasswdEntry(t, "alice", "s3cret"))
	grp := writeTestFile(t, dir, "groups", "students: alice\n")
	store, err := auth.Load(htp, grp)
	if err != nil {
		t.Fatal(err)
	}
	var seenAuth sync.Map
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenAuth.Store(r.URL.Path, r.Header.Get("Proxy-Authorization"))
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(origin.Close)
	facts := make(chan rules.Facts, 8)
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		facts <- *f
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
	tp := startProxy(t, Options{Policy: policy, Auth: store, AuthRealm: "School",
		AuthLimiter: auth.NewLimiter(auth.LimiterConfig{MaxFailures: 2}, nil)})
	send := func(user, pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, origin.URL+"/"+user, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
			req.Header["Proxy-Authorization"] = req.Header["Authorization"]
			delete(req.Header, "Authorization")
		}
		resp, err := tp.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	resp := send("", "")
	if resp.StatusCode != http.StatusProxyAuthRequired || !strings.Contains(resp.Header.Get("Proxy-Authenticate"), `realm="School"`) {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
	}
	if e := tp.log.next(t); e.Status != http.StatusProxyAuthRequired || e.User != "" {
		t.Fatalf("log of the 407: %+v", e)
	}
	if resp = send("alice", "s3cret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("good credentials: %d", resp.StatusCode)
	}
	f := <-facts
	if f.User != "alice" || !slices.Contains(f.Groups, "students") {
		t.Fatalf("facts user %q groups %q", f.User, f.Groups)
	}
	if v, _ := seenAuth.Load("/alice"); v != "" {
		t.Fatalf("origin saw Proxy-Authorization %q", v)
	}
	if e := tp.log.next(t); e.User != "alice" || e.Status != http.StatusOK {
		t.Fatalf("log of the success: %+v", e)
	}
	for i := range 2 {
		if resp = send("mallory", "guess"); resp.StatusCode != http.StatusProxyAuthRequired {
			t.Fatalf("wrong credentials #%d: %d", i, resp.StatusCode)
		}
	}
	if resp = send("mallory", "guess"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 2 failures: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The lockout is mallory's, not the address's: alice still signs in.
	if resp = send("alice", "s3cret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another user from the same address after mallory's lockout: %d", resp.StatusCode)
	}
}

// schoolOrigin serves the pages the response checks are tested with and records
// the Accept-Encoding each path was asked with.
func schoolOrigin(t *testing.T) (*httptest.Server, *sync.Map) {
	var enc sync.Map
	mux := http.NewServeMux()
	mux.HandleFunc("/setup.exe", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("MZ\x90\x00"))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for range 4 {
			_, _ = w.Write(bytes.Repeat([]byte("x"), 30_000))
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
	})
	mux.HandleFunc("/page/", func(w http.ResponseWriter, r *http.Request) {
		enc.Store(r.URL.Path, r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, pages[strings.TrimPrefix(r.URL.Path, "/page/")])
	})
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)
	return origin, &enc
}

var pages = map[string]string{
	"bad":  "<html><body>" + strings.Repeat("casino jackpot poker night ", 4) + "</body></html>",
	"huge": strings.Repeat("<p>Lorem ipsum.</p>", 10_000),
	"mild": "<html><body>The history of the casino in Monaco. " + strings.Repeat("Lorem ipsum. ", 400) + "</body></html>",
}

const testPhrases = "< casino ><20>\n< jackpot ><20>\n< poker ><15>\n"

// TestSchoolFileTypesAndPhrases: an executable is refused on its headers, a chunked
// body is cut at max_bytes, a page over the threshold is replaced by the block page
// naming its phrases, one under it passes byte for byte, and phrase filtering asks
// the origin for an uncompressed page (except for a group it is off for).
func TestSchoolFileTypesAndPhrases(t *testing.T) {
	origin, enc := schoolOrigin(t)
	list := writeTestFile(t, t.TempDir(), "phrases.txt", testPhrases)
	pc := phrase.Config{Lists: []string{list}}
	m, err := pc.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{School: School{
		FileTypes:        filetype.Config{BlockExtensions: []string{".exe"}, MaxBytes: 100_000},
		Phrase:           phrase.Config{Threshold: 50},
		PhraseThresholds: map[string]int{"staff": PhraseOff},
	}}
	group := "students"
	groups := func(*rules.Facts) []string { return []string{group} }
	tp := startProxy(t, Options{Config: cfg, Phrases: m, Groups: groups})
	c := tp.client(t)
	get := func(path string) (*http.Response, string, error) {
		req, _ := http.NewRequest(http.MethodGet, origin.URL+path, nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Accept-Encoding", "gzip, br")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	resp, body, _ := get("/setup.exe")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "File extension .exe is blocked") {
		t.Fatalf("exe: %d %q", resp.StatusCode, body)
	}
	if e := tp.log.next(t); e.Action != "block" || e.Rule != "file_types" {
		t.Fatalf("exe log: %+v", e)
	}
	if _, body, err := get("/stream"); err == nil || len(body) > 100_000 {
		t.Fatalf("chunked body over max_bytes: %d bytes, err %v", len(body), err)
	}
	tp.log.next(t)
	resp, body, _ = get("/page/bad")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "The page scored 55 (the limit is 50). Top phrases: &#34;casino&#34; (20)") {
		t.Fatalf("bad page: %d %q", resp.StatusCode, body)
	}
	if e := tp.log.next(t); e.Rule != "phrase" || e.Status != http.StatusForbidden {
		t.Fatalf("bad page log: %+v", e)
	}
	resp, body, _ = get("/page/huge")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "larger than the limit of 100000 bytes") {
		t.Fatalf("huge chunked page: %d %q", resp.StatusCode, body)
	}
	tp.log.next(t)
	resp, body, _ = get("/page/mild")
	if resp.StatusCode != http.StatusOK || body != pages["mild"] {
		t.Fatalf("mild page changed: %d, %d bytes %+v", resp.StatusCode, len(body), tp.log.next(t))
	}
	if v, _ := enc.Load("/page/mild"); v != "identity" {
		t.Fatalf("origin asked with Accept-Encoding %q, want identity", v)
	}
	tp.log.next(t)
	group = "staff"
	resp, body, _ = get("/page/bad")
	if resp.StatusCode != http.StatusOK || body != pages["bad"] {
		t.Fatalf("staff (phrase filtering off) got %d %q", resp.StatusCode, body)
	}
	if v, _ := enc.Load("/page/bad"); v != "gzip, br" {
		t.Fatalf("staff request's Accept-Encoding %q, want the client's", v)
	}
}

// TestSchoolSafeSearchPerGroup: for students, a CONNECT to www.google.com is dialed
// to forcesafesearch.google.com and a plain YouTube request goes to
// restrict.youtube.com with its own Host and YouTube-Restrict: Strict; staff get
// neither.
func TestSchoolSafeSearchPerGroup(t *testing.T) {
	var hdr sync.Map
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr.Store(r.Host, r.Header.Get("YouTube-Restrict"))
	}))
	t.Cleanup(origin.Close)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(tlsOrigin.Close)
	var mu sync.Mutex
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		target := origin.Listener.Addr().String()
		if strings.HasSuffix(addr, ":443") {
			target = tlsOrigin.Listener.Addr().String()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
	lastDial := func() string {
		mu.Lock()
		defer mu.Unlock()
		return dialed[len(dialed)-1]
	}
	cfg := &Config{School: School{SafeSearchGroups: map[string]filter.SafeSearch{
		"students": {Google: true, YouTube: filter.YouTubeStrict},
	}}}
	for _, c := range []struct {
		group, connect, plain, restrict string
	}{
		{"students", "forcesafesearch.google.com:443", "restrict.youtube.com:80", "Strict"},
		{"staff", "www.google.com:443", "www.youtube.com:80", ""},
	} {
		t.Run(c.group, func(t *testing.T) {
			groups := func(*rules.Facts) []string { return []string{c.group} }
			tp := startProxy(t, Options{Config: cfg, Dial: dial, Groups: groups,
				Transport: &http.Transport{DialContext: dial}})
			resp, conn, _ := tp.rawRequest(t, "CONNECT www.google.com:443 HTTP/1.1\r\nHost: www.google.com:443\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("CONNECT: %d", resp.StatusCode)
			}
			tc := tls.Client(conn, &tls.Config{ServerName: "www.google.com", InsecureSkipVerify: true}) // the test origin's certificate names example.com
			if err := tc.Handshake(); err != nil {
				t.Fatalf("TLS through the tunnel: %v", err)
			}
			if got := lastDial(); got != c.connect {
				t.Fatalf("CONNECT dialed %q, want %q", got, c.connect)
			}
			_ = tc.Close()
			r, err := tp.client(t).Get("http://www.youtube.com/watch?v=1")
			if err != nil {
				t.Fatal(err)
			}
			_ = r.Body.Close()
			if got := lastDial(); got != c.plain {
				t.Fatalf("plain YouTube dialed %q, want %q", got, c.plain)
			}
			if v, ok := hdr.Load("www.youtube.com"); !ok || v != c.restrict {
				t.Fatalf("origin saw Host www.youtube.com %v with YouTube-Restrict %q, want %q", ok, v, c.restrict)
			}
		})
	}
}

// TestSchoolPACOnProxyPort: /proxy.pac and /wpad.dat name the address the client
// reached; other local paths keep the proxy's 404 page; unlisted clients get 403.
func TestSchoolPACOnProxyPort(t *testing.T) {
	cfg := &Config{School: School{PAC: &pac.Config{DirectDomains: []string{"school.lan"}}}}
	tp := startProxy(t, Options{Config: cfg})
	for _, path := range []string{"/proxy.pac", "/wpad.dat"} {
		resp, err := http.Get("http://" + tp.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != pac.ContentType ||
			!strings.Contains(string(b), "PROXY "+tp.addr) || !strings.Contains(string(b), "school.lan") {
			t.Fatalf("%s: %d %q %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	resp, err := http.Get("http://" + tp.addr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/other: %d", resp.StatusCode)
	}
	closed := &Config{AllowClients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, School: cfg.School}
	tp2 := startProxy(t, Options{Config: closed})
	resp, err = http.Get("http://" + tp2.addr + "/proxy.pac")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PAC for an unlisted client: %d", resp.StatusCode)
	}
	h, err := AdminPACHandler(&Config{Listen: []string{"127.0.0.1:3128"}, School: cfg.School})
	if err != nil || h == nil {
		t.Fatalf("AdminPACHandler: %v", err)
	}
	admin := httptest.NewServer(h)
	t.Cleanup(admin.Close)
	resp, err = http.Get(admin.URL + "/wpad.dat")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "PROXY 127.0.0.1:3128") {
		t.Fatalf("admin PAC: %d %q", resp.StatusCode, b)
	}
}

// TestSchoolInspectedCarriesIdentityAndFilters: a signed-in CONNECT that is
// inspected passes its user and groups to every request inside, and the phrase
// filter works on the decrypted pages, over HTTP/1.1 and HTTP/2.
func TestSchoolInspectedCarriesIdentityAndFilters(t *testing.T) {
	env := newInspectEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, pages[strings.TrimPrefix(r.URL.Path, "/page/")])
	}))
	dir := t.TempDir()
	store, err := auth.Load(writeTestFile(t, dir, "htpasswd", htpasswdEntry(t, "alice", "pw")), writeTestFile(t, dir, "groups", "students: alice\n"))
	if err != nil {
		t.Fatal(err)
	}
	pc := phrase.Config{Lists: []string{writeTestFile(t, dir, "phrases.txt", testPhrases)}}
	m, err := pc.Compile()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var inner []rules.Facts
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		if f.Method != http.MethodConnect {
			mu.Lock()
			inner = append(inner, *f)
			mu.Unlock()
		}
		return inspectPolicy(f)
	})
	opts := env.proxyOpts(t, policy, &Config{School: School{Phrase: phrase.Config{Threshold: 50}}})
	opts.Auth, opts.Phrases = store, m
	tp := startProxy(t, opts)
	for _, h2 := range []bool{false, true} {
		c := env.client(t, tp, h2)
		c.Transport.(*http.Transport).Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: tp.addr, User: url.UserPassword("alice", "pw")})
		for _, tc := range []struct {
			page   string
			status int
		}{{"bad", http.StatusForbidden}, {"mild", http.StatusOK}} {
			resp, err := c.Get(env.url("example.com", "/page/"+tc.page))
			if err != nil {
				t.Fatalf("h2=%t %s: %v", h2, tc.page, err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.status == http.StatusOK && string(b) != pages[tc.page]) ||
				(tc.status != http.StatusOK && !strings.Contains(string(b), "Top phrases")) {
				t.Fatalf("h2=%t %s: %d %q", h2, tc.page, resp.StatusCode, b)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(inner) != 4 {
		t.Fatalf("%d inner requests evaluated, want 4", len(inner))
	}
	for _, f := range inner {
		if f.User != "alice" || !slices.Contains(f.Groups, "students") {
			t.Fatalf("inner request facts: user %q groups %q", f.User, f.Groups)
		}
	}
}
