package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Site runs the binary with a reverse TLS listener for site.test in front
// of an origin that answers "served" (and /big: 32 MiB), and returns the
// process, the listener's address and the CA to trust.
func h2Site(t *testing.T) (*proc, string, *x509.CertPool) {
	t.Helper()
	big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		if r.URL.Path == "/count" {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n, err)
			return
		}
		io.WriteString(w, "served")
	}))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`reverse:
  tls_listen: ["127.0.0.1:0"]
  tls: {mode: internal, names: [site.test]}
  state_dir: state
  routes: [{name: site, host: [site.test], pool: site}]
pools:
  site: {members: [{url: %q}]}
`, origin.URL)), 0o644)
	p, addrs := runPolicy(t, policy)
	addr := addrs["reverse-tls"]
	if addr == "" {
		t.Fatalf("no reverse-tls listener: %v", addrs)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "state", "reverse-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return p, addr, roots
}

func h2Client(addr string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "site.test"},
		DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			return tls.DialWithDialer(d, network, addr, cfg)
		},
	}}
}

// served checks that a fresh HTTP/2 connection is served.
func served(t *testing.T, addr string, roots *x509.CertPool) {
	t.Helper()
	c := h2Client(addr, roots)
	defer c.CloseIdleConnections()
	res, err := c.Get("https://site.test/")
	if err != nil {
		t.Fatalf("a fresh connection: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || string(b) != "served" {
		t.Fatalf("a fresh connection: %s %q", res.Proto, b)
	}
}

// rawH2 opens an HTTP/2 connection (TLS, ALPN h2, prefaces exchanged) for
// frames written by hand.
func rawH2(t *testing.T, addr string, roots *x509.CertPool) (*tls.Conn, *http2.Framer) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, ServerName: "site.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	fr := http2.NewFramer(c, c)
	io.WriteString(c, http2.ClientPreface)
	fr.WriteSettings()
	return c, fr
}

// untilGoAway reads frames until GOAWAY and returns its code; it fails if
// the connection ends without one.
func untilGoAway(t *testing.T, c net.Conn, fr *http2.Framer) http2.ErrCode {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g.ErrCode
		}
	}
}

func headerBlock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

// TestH2AttacksThroughBinary: rapid reset (CVE-2023-44487), a
// CONTINUATION flood (CVE-2024-27316 and kin), a SETTINGS flood and a PING
// flood, each on its own connection to the real binary's reverse TLS
// listener: each ends with GOAWAY ENHANCE_YOUR_CALM, and a fresh HTTP/2
// connection is served during and after every one.
func TestH2AttacksThroughBinary(t *testing.T) {
	_, addr, roots := h2Site(t)
	served(t, addr, roots)
	get := headerBlock(":method", "GET", ":scheme", "https", ":authority", "site.test", ":path", "/")
	attacks := map[string]func(fr *http2.Framer){
		"rapid reset": func(fr *http2.Framer) {
			for id := uint32(1); id < 1<<20; id += 2 {
				// The same block each time: the literals added to the server's
				// table by the first are added again, so each block decodes alone.
				if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: get, EndStream: true, EndHeaders: true}) != nil ||
					fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					return
				}
			}
		},
		"continuation flood": func(fr *http2.Framer) {
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: get}) != nil {
				return
			}
			frag := headerBlock("x-flood", strings.Repeat("z", 15000))
			for range 100000 {
				if fr.WriteContinuation(1, false, frag) != nil {
					return
				}
			}
		},
		"settings flood": func(fr *http2.Framer) {
			for range 1000000 {
				if fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384}) != nil {
					return
				}
			}
		},
		"ping flood": func(fr *http2.Framer) {
			for range 1000000 {
				if fr.WritePing(false, [8]byte{1}) != nil {
					return
				}
			}
		},
	}
	for name, attack := range attacks {
		t.Run(name, func(t *testing.T) {
			c, fr := rawH2(t, addr, roots)
			go attack(fr)
			served(t, addr, roots) // during
			if code := untilGoAway(t, c, fr); code != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
			}
			served(t, addr, roots) // after
		})
	}
}

// TestH2ReloadKeepsStreams: a 32 MiB download and a 16 MiB upload in
// flight over HTTP/2 while the policy is reloaded (SIGHUP): both complete.
func TestH2ReloadKeepsStreams(t *testing.T) {
	p, addr, roots := h2Site(t)
	c := h2Client(addr, roots)
	res, err := c.Get("https://site.test/big")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(res.Body, head); err != nil {
		t.Fatal(err)
	}
	up := bytes.Repeat([]byte("up."), 16<<20/3)
	pr, pw := io.Pipe()
	upDone := make(chan error, 1)
	go func() {
		res, err := c.Post("https://site.test/count", "application/octet-stream", pr)
		if err != nil {
			upDone <- err
			return
		}
		defer res.Body.Close()
		got, err := io.ReadAll(res.Body)
		if want := fmt.Sprint(len(up), " <nil>"); err == nil && string(got) != want {
			err = fmt.Errorf("origin counted %q, want %q", got, want)
		}
		upDone <- err
	}()
	pw.Write(up[:1<<20])
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, "policy reloaded")
	go func() { pw.Write(up[1<<20:]); pw.Close() }()
	rest, err := io.ReadAll(res.Body)
	if err != nil || len(head)+len(rest) != 32<<20 {
		t.Fatalf("download across the reload: %d bytes, %v", len(head)+len(rest), err)
	}
	select {
	case err := <-upDone:
		if err != nil {
			t.Fatalf("upload across the reload: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("upload did not finish")
	}
	served(t, addr, roots)
}
