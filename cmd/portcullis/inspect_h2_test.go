package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/portcullis/portcullis/internal/h2"
)

// inspectPolicy is a plain forward listener that inspects every tunnel with
// the CA in ca.pem/ca.key and blocks paths under /blocked/ inside them.
func (w *httpsProxyWorld) inspectPolicy() string {
	return `forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [` + w.originPort + `]
  ca_cert: ca.pem
  ca_key: ca.key
  upstream_ca_file: origin.pem
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "off", log: {path: access.log}}
rules:
  - {name: no-blocked, path: ["/blocked/**"], action: block, reason: Blocked inside the tunnel}
  - {name: look-inside, client: ["127.0.0.0/8"], action: inspect}
`
}

// TestInspectedTunnelHTTP2 drives an inspecting forward proxy (the real
// binary) with clients that negotiate h2 inside the tunnel: curl --http2
// with the inspection CA as --cacert, and Go's client with
// ForceAttemptHTTP2. The requests inside are served over HTTP/2 (by the
// door's own mux), each decided on its path: an allowed one reaches the
// origin, a blocked one gets the block page; each has its access-log line
// with proto HTTP/2.0. A client that offers only HTTP/1.1 is served too.
func TestInspectedTunnelHTTP2(t *testing.T) {
	w := newHTTPSProxyWorld(t)
	caCert, caKey := filepath.Join(w.dir, "ca.pem"), filepath.Join(w.dir, "ca.key")
	if out, errOut, code := runCLI(t, "ca", "create", "--cert", caCert, "--key", caKey); code != 0 {
		t.Fatalf("ca create: %s%s", out, errOut)
	}
	_, proxyURL := start(t, w.write(t, "policy.yaml", w.inspectPolicy()))
	origin := "https://127.0.0.1:" + w.originPort

	t.Run("go", func(t *testing.T) {
		for _, h2 := range []bool{true, false} {
			tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), ForceAttemptHTTP2: h2,
				TLSClientConfig: &tls.Config{RootCAs: w.roots(t, caCert)}}
			if !h2 {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			want := "HTTP/1.1"
			if h2 {
				want = "HTTP/2.0"
			}
			get := func(path string) (*http.Response, string) {
				req, _ := http.NewRequest(http.MethodGet, origin+path, nil)
				req.Header.Set("Accept", "text/html")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s GET %s: %v", want, path, err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s GET %s: body: %v", want, path, err)
				}
				return resp, string(b)
			}
			resp, body := get("/go-allowed-" + want)
			if resp.StatusCode != 200 || !strings.Contains(body, "secure origin: /go-allowed-"+want) {
				t.Fatalf("%s allowed: %d %q", want, resp.StatusCode, body)
			}
			if resp.Proto != want {
				t.Errorf("the client spoke %s inside the tunnel, want %s", resp.Proto, want)
			}
			if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != "Portcullis inspection CA" {
				t.Fatalf("%s: not inspected", want)
			}
			resp, body = get("/blocked/go-" + want)
			if resp.StatusCode != 403 || !strings.Contains(body, "no-blocked") {
				t.Fatalf("%s blocked: %d %q", want, resp.StatusCode, body)
			}
			// a large body through the inspected tunnel arrives whole
			resp, body = get("/big")
			if resp.StatusCode != 200 || len(body) != bigBody {
				t.Fatalf("%s /big: %d, %d bytes", want, resp.StatusCode, len(body))
			}
			for _, path := range []string{"/go-allowed-" + want, "/blocked/go-" + want} {
				line := w.logLine(t, `"url":"`+origin+path+`"`)
				if !strings.Contains(line, `"proto":"`+want+`"`) || strings.Contains(path, "blocked") != strings.Contains(line, `"status":403`) {
					t.Errorf("the access-log line of %s: %s", path, line)
				}
			}
			tr.CloseIdleConnections()
		}
	})

	t.Run("curl", func(t *testing.T) {
		curl := needCurl(t)
		for _, path := range []string{"/curl-allowed", "/blocked/curl"} {
			r := runCurl(t, curl, "--http2", "--proxy", proxyURL.String(), "--cacert", caCert, "-H", "Accept: text/html", origin+path)
			if r.connect != "200" {
				t.Fatalf("%s: CONNECT %s", path, r.connect)
			}
			if !strings.Contains(r.headers, "HTTP/2 ") {
				t.Errorf("%s: curl did not speak HTTP/2 inside the tunnel:\n%s", path, r.headers)
			}
			blocked := strings.HasPrefix(path, "/blocked/")
			switch {
			case blocked && (r.code != "403" || !strings.Contains(r.body, "no-blocked")):
				t.Fatalf("%s: %s %q", path, r.code, r.body)
			case !blocked && (r.code != "200" || !strings.Contains(r.body, "secure origin: "+path)):
				t.Fatalf("%s: %s %q", path, r.code, r.body)
			}
			line := w.logLine(t, `"url":"`+origin+path+`"`)
			if !strings.Contains(line, `"proto":"HTTP/2.0"`) || !strings.Contains(line, `"status":`+r.code) {
				t.Errorf("the access-log line of %s: %s", path, line)
			}
		}
	})
	// The mux inside the tunnel is the door's own (internal/h2): its first
	// SETTINGS advertise its header-list bound, which Go's HTTP/2 server
	// (goproxy's, before) does not; and a request sent frame by frame is
	// answered on it.
	t.Run("mux", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", proxyURL.Host, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		authority := "127.0.0.1:" + w.originPort
		io.WriteString(c, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 || br.Buffered() != 0 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		tc := tls.Client(c, &tls.Config{RootCAs: w.roots(t, caCert), ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != "h2" {
			t.Fatalf("handshake inside the tunnel: %v, ALPN %q", err, tc.ConnectionState().NegotiatedProtocol)
		}
		fr := http2.NewFramer(tc, tc)
		io.WriteString(tc, http2.ClientPreface)
		fr.WriteSettings()
		f, err := fr.ReadFrame()
		sf, ok := f.(*http2.SettingsFrame)
		if err != nil || !ok || sf.IsAck() {
			t.Fatalf("first frame inside the tunnel: %v %v", f, err)
		}
		if v, ok := sf.Value(http2.SettingMaxHeaderListSize); !ok || v != h2.DefaultMaxHeaderListSize {
			t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d (sent: %v), want internal/h2's %d", v, ok, h2.DefaultMaxHeaderListSize)
		}
		fr.WriteSettingsAck()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
			BlockFragment: headerBlock(":method", "GET", ":scheme", "https", ":authority", authority, ":path", "/framed")})
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no answer to the framed request: %v", err)
			}
			if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamID == 1 {
				break
			}
		}
		line := w.logLine(t, `"url":"`+origin+`/framed"`)
		if !strings.Contains(line, `"proto":"HTTP/2.0"`) || !strings.Contains(line, `"status":200`) {
			t.Errorf("the access-log line of /framed: %s", line)
		}
	})
}
