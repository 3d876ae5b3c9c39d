package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// BenchmarkReverseTLS1KiB: client → the engine's reverse TLS door → origin,
// 1 KiB proxied responses, over HTTP/2 and over HTTP/3 (same listener port,
// same door), parallel requests on one client connection each way.
//
//	go test -run - -bench ReverseTLS1KiB -benchmem ./internal/engine
func BenchmarkReverseTLS1KiB(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(body)
	}))
	b.Cleanup(origin.Close)
	state := b.TempDir()
	e := runEngine(b, fmt.Sprintf(`reverse:
  tls_listen: ["127.0.0.1:0"]
  http3: true
  tls: {mode: internal, names: [app.example.test]}
  state_dir: %q
  routes: [{name: app, pool: app}]
pools:
  app: {members: [{url: %q}], max_idle_per_member: 256}
`, state, origin.URL))
	pem, err := os.ReadFile(filepath.Join(state, "reverse-ca.crt"))
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "app.example.test"}
	addrs := e.Addrs()
	tlsAddr, quicAddr := addrs["reverse-tls"][0].String(), addrs[reverseQUIC][0].String()

	b.Run("h2", func(b *testing.B) {
		tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 256}
		defer tr.CloseIdleConnections()
		benchDoorGet(b, &http.Client{Transport: tr}, "https://"+tlsAddr+"/x", 2)
	})
	b.Run("h3", func(b *testing.B) {
		tr := &http3.Transport{TLSClientConfig: tlsConf, Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, quicAddr, tc, qc)
		}}
		defer tr.Close()
		benchDoorGet(b, &http.Client{Transport: tr}, "https://"+quicAddr+"/x", 3)
	})
}

// benchDoorGet runs parallel GETs of url with c, checking the protocol and
// the 1 KiB body, and reports requests per second.
func benchDoorGet(b *testing.B, c *http.Client, url string, major int) {
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != 1024 || resp.StatusCode != 200 || resp.ProtoMajor != major {
				b.Errorf("%s %d, %d bytes", resp.Proto, resp.StatusCode, n)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
