package anonymize_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/tunnel"
)

// The leak suite: a recording origin on 127.0.0.1 records everything it receives;
// real clients (Go's and curl) on [::1] send requests full of identifying values
// through a proxy that applies a profile; each case states exactly which header
// fields, values and request target arrive, and what the client gets back. The
// client connects over IPv6 and the proxy over IPv4, so the origin can tell the
// client's address (::1) from the proxy's (127.0.0.1).

// recorded is what the recording origin saw of one request.
type recorded struct {
	remote netip.Addr  // the connecting address
	uri    string      // the request target, byte for byte
	header http.Header // every field but Host
}

// startRecordingOrigin starts the origin (over TLS with a certificate for
// example.com when useTLS is set); every request it serves is sent on the returned
// channel before the response is written.
func startRecordingOrigin(t *testing.T, useTLS bool) (srv *httptest.Server, seen <-chan recorded) {
	t.Helper()
	ch := make(chan recorded, 1)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ch <- recorded{remote: ap.Addr().Unmap(), uri: r.RequestURI, header: r.Header.Clone()}
		h := w.Header()
		h["Server"] = []string{"Apache/2.4.58 (Ubuntu)"}
		h["X-Powered-By"] = []string{"PHP/8.3.6"}
		h["Via"] = []string{"1.1 varnish-edge"}
		h["Set-Cookie"] = []string{"sid=s3cr3t; Max-Age=31536000; Path=/; HttpOnly"}
		h["Content-Type"] = []string{"text/plain"}
		io.WriteString(w, "recorded\n")
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, ch
}

// originDial connects to the origin at originAddr whatever address is asked for,
// so tests can use real-looking names without leaving loopback.
func originDial(originAddr string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp4", originAddr)
	}
}

// serveOnIPv6 serves h on [::1]:0 and returns the proxy URL with credentials, so
// both clients send Proxy-Authorization.
func serveOnIPv6(t *testing.T, h http.Handler) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("alice", "secret")
	return u
}

// A leakProxy starts a forward proxy on [::1] that applies p and relays every
// absolute-form request to the origin at originAddr.
type leakProxy struct {
	name  string
	start func(t *testing.T, p *Profile, originAddr string) *url.URL
}

// testProxy is a minimal forward proxy on net/http that applies RemoveHopByHop and
// the profile the way the forward door does; it isolates this package from the door.
func testProxy() leakProxy {
	return leakProxy{"testproxy", func(t *testing.T, p *Profile, originAddr string) *url.URL {
		tr := &http.Transport{DialContext: originDial(originAddr), DisableCompression: true}
		t.Cleanup(tr.CloseIdleConnections)
		return serveOnIPv6(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil || !r.URL.IsAbs() {
				http.Error(w, "not a proxy request", http.StatusBadRequest)
				return
			}
			out := r.Clone(r.Context())
			out.RequestURI = ""
			RemoveHopByHop(out.Header)
			p.Request(out, ap.Addr())
			resp, err := tr.RoundTrip(out)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			RemoveHopByHop(resp.Header)
			p.Response(resp)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		}))
	}}
}

// forwardDoor is the real forward door (forward.New) with the profile as its
// anonymizer for every request.
func forwardDoor() leakProxy {
	return leakProxy{"forward", func(t *testing.T, p *Profile, originAddr string) *url.URL {
		tunnels := tunnel.NewSet()
		t.Cleanup(func() { tunnels.Shutdown(context.Background()) })
		door, err := forward.New(forward.Options{
			Anonymizer: func(string) forward.Anonymizer { return p },
			Dial:       originDial(originAddr),
			Tunnels:    tunnels,
		})
		if err != nil {
			t.Fatal(err)
		}
		return serveOnIPv6(t, door)
	}}
}

// trust is what a client needs for HTTPS through the proxy: the roots it accepts
// (as a pool and as a PEM file for curl) and the name to verify. nil: plain HTTP.
type trust struct {
	roots      *x509.CertPool
	pemFile    string
	serverName string // "" verifies the URL's host
}

// A leakClient sends one GET through the proxy and returns the response header.
type leakClient struct {
	name string
	// viaHTTPS is the protocol version the client speaks to the inspecting door,
	// as Via names it: Go's client speaks HTTP/1.1 there, curl negotiates HTTP/2.
	viaHTTPS string
	send     func(t *testing.T, proxy *url.URL, target string, h http.Header, tr *trust) http.Header
}

func goClient() leakClient {
	return leakClient{"go", "1.1", func(t *testing.T, proxy *url.URL, target string, h http.Header, tc *trust) http.Header {
		t.Helper()
		tr := &http.Transport{Proxy: http.ProxyURL(proxy), DisableCompression: true}
		if tc != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: tc.roots, ServerName: tc.serverName}
		}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest("GET", target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h.Clone()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body error %v", resp.StatusCode, err)
		}
		return resp.Header
	}}
}

// curlClient drives the curl binary with -x. It is skipped when curl is missing,
// unless CI=true.
func curlClient() leakClient {
	return leakClient{"curl", "2", func(t *testing.T, proxy *url.URL, target string, h http.Header, tc *trust) http.Header {
		t.Helper()
		bin, err := exec.LookPath("curl")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("curl is required in CI")
			}
			t.Skip("curl not installed")
		}
		pw, _ := proxy.User.Password()
		args := []string{"-q", "-sS", "--max-time", "20", "-x", "http://" + proxy.Host,
			"--proxy-user", proxy.User.Username() + ":" + pw, "-D", "-", "-o", os.DevNull}
		if tc != nil {
			if tc.serverName != "" {
				t.Skip("curl cannot verify a name other than the URL's through a proxy")
			}
			args = append(args, "--cacert", tc.pemFile)
		}
		for k, vs := range h {
			for _, v := range vs {
				args = append(args, "-H", k+": "+v)
			}
		}
		cmd := exec.CommandContext(t.Context(), bin, append(args, target)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		// The dump holds the proxy's "200 Connection established" first for HTTPS;
		// the origin's response is the last one. curl writes HTTP/2 as "HTTP/2",
		// which http.ReadResponse wants as "HTTP/2.0".
		out = bytes.ReplaceAll(out, []byte("\nHTTP/2 "), []byte("\nHTTP/2.0 "))
		var resp *http.Response
		for br := bufio.NewReader(bytes.NewReader(out)); ; {
			next, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			resp = next
		}
		if resp == nil {
			t.Fatalf("curl output %q holds no response", out)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.Header
	}}
}

// Browser agents the suite sends and expects.
const (
	uaChromeAndr = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/AP2A.240805.005) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36"
	uaFirefoxLin = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
)

const (
	leakTarget    = "http://news.example/story/42?id=7&utm_source=newsletter&q=caf%C3%A9+au+lait&fbclid=IwAR0x&&empty=&utm_medium=email&z=%2F%3F"
	leakTargetTLS = "https://news.example/story/42?id=7&utm_source=newsletter&q=caf%C3%A9+au+lait&fbclid=IwAR0x&&empty=&utm_medium=email&z=%2F%3F"
	leakURI       = "/story/42?id=7&utm_source=newsletter&q=caf%C3%A9+au+lait&fbclid=IwAR0x&&empty=&utm_medium=email&z=%2F%3F"
	leakURIClean  = "/story/42?id=7&q=caf%C3%A9+au+lait&&empty=&z=%2F%3F"
	crossReferer  = "https://social.example/feed?u=alice"
	sameReferer   = "http://news.example/front?session=alice"
	siteReferer   = "http://www.news.example/front"
	originSetCook = "sid=s3cr3t; Max-Age=31536000; Path=/; HttpOnly"
)

// identifyingFields returns the names the client sends that elite and anonymous
// remove, with extra names appended.
func identifyingFields(extra ...string) []string {
	return append([]string{
		"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "Via", "X-Real-Ip", "Client-Ip", "True-Client-Ip",
		"Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "From",
	}, extra...)
}

// leakRequest is a request full of identifying values, from a page at referer
// (none when "") with the given Sec-Fetch-Site (none when "").
func leakRequest(referer, fetchSite string) http.Header {
	h := http.Header{
		"User-Agent":          {uaChromeAndr},
		"Accept":              {"text/html"},
		"Accept-Language":     {"de-CH,de;q=0.9,fr;q=0.4"},
		"Accept-Encoding":     {"br, zstd"},
		"Cookie":              {"session=alice-secret; _ga=GA1.2.1234.5678"},
		"X-Forwarded-For":     {"10.9.8.7"},
		"X-Forwarded-Host":    {"intranet.corp.example"},
		"Forwarded":           {"for=10.9.8.7;by=10.0.0.1"},
		"Via":                 {"1.1 corp-gateway"},
		"X-Real-Ip":           {"10.9.8.7"},
		"Client-Ip":           {"10.9.8.7"},
		"True-Client-Ip":      {"10.9.8.7"},
		"Cf-Connecting-Ip":    {"10.9.8.7"},
		"X-Client-Ip":         {"10.9.8.7"},
		"X-Cluster-Client-Ip": {"10.9.8.7"},
		"From":                {"alice@example.org"},
		"X-Client-Data":       {"CIe2yQEIprbJAQ=="},
		"Sec-Ch-Ua":           {`"Chromium";v="130", "Google Chrome";v="130", "Not?A_Brand";v="99"`},
		"Sec-Ch-Ua-Mobile":    {"?1"},
		"Sec-Ch-Ua-Platform":  {`"Android"`},
		"Sec-Ch-Ua-Model":     {`"Pixel 8 Pro"`},
	}
	if referer != "" {
		h["Referer"] = []string{referer}
	}
	if fetchSite != "" {
		h["Sec-Fetch-Site"] = []string{fetchSite}
	}
	return h
}

// edit returns a copy of h with the fields in set replaced (a nil value deletes).
func edit(h http.Header, set map[string][]string) http.Header {
	h = h.Clone()
	for k, v := range set {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return h
}

// without returns a copy of h without the named fields.
func without(h http.Header, names ...string) http.Header {
	h = h.Clone()
	for _, n := range names {
		delete(h, n)
	}
	return h
}

type leakCase struct {
	name       string
	profile    *Profile
	referer    string
	fetchSite  string
	wantHeader http.Header // exactly what reaches the origin (Host aside)
	wantURI    string
	wantResp   http.Header // exactly what reaches the client (Date, Content-* aside)
	httpOnly   bool        // the expectation holds for an http:// target only (same-origin Referer)
	// secureHints: the Sec-CH-UA fields of wantHeader arrive only at an https://
	// target; browsers send no client hints to an insecure origin, so neither
	// does the profile that rebuilds them.
	secureHints bool
}

// forTarget returns the case's expectation for a target over plain http or https.
func (c leakCase) forTarget(https bool) leakCase {
	if c.secureHints && !https {
		c.wantHeader = without(c.wantHeader, "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform")
	}
	return c
}

func leakCases(t *testing.T) []leakCase {
	sent := leakRequest(crossReferer, "cross-site")
	elite := without(sent, identifyingFields()...)
	originResp := http.Header{
		"Server": {"Apache/2.4.58 (Ubuntu)"}, "X-Powered-By": {"PHP/8.3.6"},
		"Via": {"1.1 varnish-edge"}, "Set-Cookie": {originSetCook},
	}
	viaResp := edit(originResp, map[string][]string{"Via": {"1.1 varnish-edge, 1.1 portcullis"}})
	compile := func(cfg ProfileConfig) *Profile {
		p, err := Compile("leak", cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// levelOnly isolates one action: no default header or parameter lists.
	action := func(cfg ProfileConfig) *Profile {
		if cfg.RemoveHeaders == nil {
			cfg.RemoveHeaders = []string{}
		}
		if cfg.StripParams == nil {
			cfg.StripParams = []string{}
		}
		return compile(cfg)
	}
	generic := `Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36`
	return []leakCase{
		{
			name: "transparent", profile: Transparent(), referer: crossReferer, fetchSite: "cross-site",
			wantHeader: edit(sent, map[string][]string{
				"X-Forwarded-For": {"10.9.8.7, ::1"},
				"Via":             {"1.1 corp-gateway, 1.1 portcullis"},
			}),
			wantURI: leakURI, wantResp: viaResp,
		},
		{
			name: "anonymous", profile: Anonymous(), referer: crossReferer, fetchSite: "cross-site",
			wantHeader: edit(elite, map[string][]string{"Via": {"1.1 portcullis"}}),
			wantURI:    leakURI, wantResp: viaResp,
		},
		{
			name: "elite", profile: Elite(), referer: crossReferer, fetchSite: "cross-site",
			wantHeader: elite, wantURI: leakURI, wantResp: originResp,
		},
		{
			name: "referrer strip", profile: action(ProfileConfig{Referrer: "strip"}), referer: sameReferer,
			wantHeader: without(leakRequest(sameReferer, ""), identifyingFields("Referer")...),
			wantURI:    leakURI, wantResp: originResp,
		},
		{
			name: "referrer same-origin from another site", profile: action(ProfileConfig{Referrer: "same-origin"}),
			referer: crossReferer, fetchSite: "cross-site",
			wantHeader: without(elite, "Referer"), wantURI: leakURI, wantResp: originResp,
		},
		{
			name: "referrer same-origin from the same origin", profile: action(ProfileConfig{Referrer: "same-origin"}),
			referer: sameReferer, fetchSite: "same-origin", httpOnly: true,
			wantHeader: without(leakRequest(sameReferer, "same-origin"), identifyingFields()...),
			wantURI:    leakURI, wantResp: originResp,
		},
		{
			name: "referrer origin", profile: action(ProfileConfig{Referrer: "origin"}), referer: crossReferer, fetchSite: "cross-site",
			wantHeader: edit(elite, map[string][]string{"Referer": {"https://social.example/"}}),
			wantURI:    leakURI, wantResp: originResp,
		},
		{
			name: "cookies third-party: cross-site by Sec-Fetch-Site", profile: action(ProfileConfig{Cookies: "third-party"}),
			referer: crossReferer, fetchSite: "cross-site",
			wantHeader: without(elite, "Cookie"), wantURI: leakURI,
			wantResp: without(originResp, "Set-Cookie"),
		},
		{
			name: "cookies third-party: other site by Referer", profile: action(ProfileConfig{Cookies: "third-party"}),
			referer:    crossReferer,
			wantHeader: without(leakRequest(crossReferer, ""), identifyingFields("Cookie")...),
			wantURI:    leakURI, wantResp: without(originResp, "Set-Cookie"),
		},
		{
			// The Referer alone shows the request is cross-site, and the profile
			// strips it: the response is still judged on what the client sent
			// (bc21481 judged it on the stripped request and let Set-Cookie through).
			name:       "cookies third-party: other site by a Referer the profile strips",
			profile:    action(ProfileConfig{Cookies: "third-party", Referrer: "strip"}),
			referer:    crossReferer,
			wantHeader: without(leakRequest(crossReferer, ""), identifyingFields("Cookie", "Referer")...),
			wantURI:    leakURI, wantResp: without(originResp, "Set-Cookie"),
		},
		{
			name: "cookies third-party: same site by Referer", profile: action(ProfileConfig{Cookies: "third-party"}),
			referer:    siteReferer,
			wantHeader: without(leakRequest(siteReferer, ""), identifyingFields()...),
			wantURI:    leakURI, wantResp: originResp,
		},
		{
			name: "cookies strip, session cookies", profile: action(ProfileConfig{Cookies: "strip", SessionCookies: true}),
			referer: sameReferer, fetchSite: "same-origin",
			wantHeader: without(leakRequest(sameReferer, "same-origin"), identifyingFields("Cookie")...),
			wantURI:    leakURI, wantResp: without(originResp, "Set-Cookie"),
		},
		{
			name: "session cookies", profile: action(ProfileConfig{SessionCookies: true}), referer: crossReferer, fetchSite: "cross-site",
			wantHeader: elite, wantURI: leakURI,
			wantResp: edit(originResp, map[string][]string{"Set-Cookie": {"sid=s3cr3t; Path=/; HttpOnly"}}),
		},
		{
			name: "user agent generic", profile: action(ProfileConfig{UserAgent: "generic"}), referer: crossReferer, fetchSite: "cross-site",
			secureHints: true,
			wantHeader: edit(elite, map[string][]string{
				"User-Agent":      {generic},
				"Sec-Ch-Ua":       {`"Chromium";v="130", "Google Chrome";v="130", "Not_A Brand";v="99"`},
				"Sec-Ch-Ua-Model": nil,
			}),
			wantURI: leakURI, wantResp: originResp,
		},
		{
			name: "user agent replace", profile: action(ProfileConfig{UserAgent: "replace", UserAgentString: uaFirefoxLin}),
			referer: crossReferer, fetchSite: "cross-site",
			wantHeader: edit(without(elite, "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Ch-Ua-Model"),
				map[string][]string{"User-Agent": {uaFirefoxLin}}),
			wantURI: leakURI, wantResp: originResp,
		},
		{
			name: "tracking parameters", profile: action(ProfileConfig{StripParams: DefaultStripParams()}),
			referer: crossReferer, fetchSite: "cross-site",
			wantHeader: elite, wantURI: leakURIClean, wantResp: originResp,
		},
		{
			name: "headers: remove, set, language, GPC, DNT",
			profile: action(ProfileConfig{
				RemoveHeaders: []string{"X-Client-*", "Sec-Ch-Ua-M*"}, SetHeaders: map[string]string{"X-Profile": "test"},
				AcceptLanguage: "en-US,en;q=0.9", GPC: true, DNT: true,
			}),
			referer: crossReferer, fetchSite: "cross-site",
			wantHeader: edit(elite, map[string][]string{
				"X-Client-Data": nil, "Sec-Ch-Ua-Mobile": nil, "Sec-Ch-Ua-Model": nil,
				"X-Profile": {"test"}, "Accept-Language": {"en-US,en;q=0.9"}, "Sec-Gpc": {"1"}, "Dnt": {"1"},
			}),
			wantURI: leakURI, wantResp: originResp,
		},
		{
			name: "hide origin", profile: action(ProfileConfig{HideOrigin: &HideOriginConfig{Server: "www"}}),
			referer: crossReferer, fetchSite: "cross-site",
			wantHeader: elite, wantURI: leakURI,
			wantResp: http.Header{"Server": {"www"}, "Set-Cookie": {originSetCook}},
		},
		{
			name: "privacy", profile: Privacy(), referer: crossReferer, fetchSite: "cross-site", secureHints: true,
			wantHeader: edit(elite, map[string][]string{
				"User-Agent":      {generic},
				"Sec-Ch-Ua":       {`"Chromium";v="130", "Google Chrome";v="130", "Not_A Brand";v="99"`},
				"Sec-Ch-Ua-Model": nil,
				"Accept-Language": {"en-US,en;q=0.9"},
				"X-Client-Data":   nil,
				"Cookie":          nil,
				"Referer":         nil,
				"Sec-Gpc":         {"1"},
			}),
			wantURI: leakURIClean, wantResp: without(originResp, "Set-Cookie"),
		},
		{
			name: "privacy, first-party page", profile: Privacy(), referer: sameReferer, fetchSite: "same-origin", httpOnly: true,
			secureHints: true,
			wantHeader: edit(without(leakRequest(sameReferer, "same-origin"), identifyingFields()...), map[string][]string{
				"User-Agent":      {generic},
				"Sec-Ch-Ua":       {`"Chromium";v="130", "Google Chrome";v="130", "Not_A Brand";v="99"`},
				"Sec-Ch-Ua-Model": nil,
				"Accept-Language": {"en-US,en;q=0.9"},
				"X-Client-Data":   nil,
				"Sec-Gpc":         {"1"},
			}),
			wantURI:  leakURIClean,
			wantResp: edit(originResp, map[string][]string{"Set-Cookie": {"sid=s3cr3t; Path=/; HttpOnly"}}),
		},
	}
}

// TestLeaks runs every case with every client through both proxies over plain
// HTTP and proves what arrives.
func TestLeaks(t *testing.T) {
	checkGoroutines(t)
	origin, seen := startRecordingOrigin(t, false)
	originAddr := origin.Listener.Addr().String()
	for _, c := range leakCases(t) {
		for _, px := range []leakProxy{testProxy(), forwardDoor()} {
			proxy := px.start(t, c.profile, originAddr)
			for _, client := range []leakClient{goClient(), curlClient()} {
				t.Run(c.name+"/"+px.name+"/"+client.name, func(t *testing.T) {
					resp := client.send(t, proxy, leakTarget, leakRequest(c.referer, c.fetchSite), nil)
					expectArrived(t, c.forTarget(false), seen, resp)
				})
			}
		}
	}
}

// checkGoroutines fails t if goroutines started during it still run after its
// other cleanups (servers, tunnels, connections) have run. Closing connections
// ends their goroutines asynchronously, so it polls, with a deadline.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines outlived the test:\n%s", runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// expectArrived takes the origin's record of the request just sent and checks it.
func expectArrived(t *testing.T, c leakCase, seen <-chan recorded, resp http.Header) {
	t.Helper()
	var got recorded
	select {
	case got = <-seen:
	default:
		t.Fatal("the origin recorded nothing")
	}
	// The exact comparison also proves the door adds nothing of its own (its loop
	// mark, forward.LoopHeader, goes only to parent proxies).
	checkArrived(t, c, got, resp)
}

// checkArrived compares what the origin and the client saw with the case.
func checkArrived(t *testing.T, c leakCase, got recorded, resp http.Header) {
	t.Helper()
	if got.remote != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("origin saw a connection from %v, want the proxy's 127.0.0.1", got.remote)
	}
	if got.uri != c.wantURI {
		t.Errorf("request target\n got %s\nwant %s", got.uri, c.wantURI)
	}
	if !reflect.DeepEqual(got.header, c.wantHeader) {
		for k := range mergeKeys(got.header, c.wantHeader) {
			if !reflect.DeepEqual(got.header[k], c.wantHeader[k]) {
				t.Errorf("%s: origin got %q, want %q", k, got.header[k], c.wantHeader[k])
			}
		}
	}
	if c.profile.Level() != LevelTransparent {
		for k, vs := range got.header {
			for _, v := range vs {
				for _, secret := range []string{"::1", "10.9.8.7", "alice@", "corp", "YWxpY2U6c2VjcmV0"} {
					if strings.Contains(v, secret) {
						t.Errorf("%s leaks %q: %q", k, secret, v)
					}
				}
			}
		}
	}
	resp = without(resp, "Date", "Content-Length", "Content-Type")
	if !reflect.DeepEqual(resp, c.wantResp) {
		t.Errorf("client got response header\n%v\nwant\n%v", resp, c.wantResp)
	}
}

func mergeKeys(a, b http.Header) map[string]bool {
	keys := make(map[string]bool, len(a)+len(b))
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
