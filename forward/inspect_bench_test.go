package forward

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/rules"
)

// benchInspect starts an inspecting proxy in front of a small TLS origin.
func benchInspect(b *testing.B) (*inspectEnv, *testProxy) {
	env := newInspectEnv(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 1024))
	}))
	opts := env.proxyOpts(b, rules.EvaluatorFunc(inspectPolicy), nil)
	opts.Log = discardLog{}
	return env, startProxy(b, opts)
}

// BenchmarkInspectHandshake measures one CONNECT plus a TLS handshake with the
// proxy's leaf (cached after the first iteration): the handshakes per second
// inspection sustains.
func BenchmarkInspectHandshake(b *testing.B) {
	env, tp := benchInspect(b)
	cfg := &tls.Config{ServerName: "example.com", RootCAs: env.caPool, NextProtos: []string{"http/1.1"}, ClientSessionCache: nil}
	connect := []byte("CONNECT example.com:" + env.port + " HTTP/1.1\r\nHost: example.com\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp", tp.addr)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = c.Write(connect)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("CONNECT: %v %v", resp, err)
		}
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		_ = tc.Close()
	}
}

// BenchmarkInspectedGET measures a small GET inside one kept-alive inspected
// tunnel (client → proxy TLS, proxy → origin TLS); compare with BenchmarkDirectTLSGET
// for the latency inspection adds.
func BenchmarkInspectedGET(b *testing.B) {
	env, tp := benchInspect(b)
	tr := &http.Transport{Proxy: http.ProxyURL(tp.url), TLSClientConfig: &tls.Config{RootCAs: env.caPool}}
	defer tr.CloseIdleConnections()
	benchGET(b, &http.Client{Transport: tr}, env.url("example.com", "/obj"))
}

// BenchmarkInspectedGETHTTP2 is BenchmarkInspectedGET with the client
// speaking HTTP/2 inside the tunnel.
func BenchmarkInspectedGETHTTP2(b *testing.B) {
	env, tp := benchInspect(b)
	tr := &http.Transport{Proxy: http.ProxyURL(tp.url), TLSClientConfig: &tls.Config{RootCAs: env.caPool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	benchGET(b, &http.Client{Transport: tr}, env.url("example.com", "/obj"))
}

// BenchmarkDirectTLSGET is the same GET straight to the origin.
func BenchmarkDirectTLSGET(b *testing.B) {
	env, _ := benchInspect(b)
	tr := env.origin.Client().Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	defer tr.CloseIdleConnections()
	benchGET(b, &http.Client{Transport: tr}, "https://"+env.origin.Listener.Addr().String()+"/obj")
}

func benchGET(b *testing.B, c *http.Client, url string) {
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
	}
}
