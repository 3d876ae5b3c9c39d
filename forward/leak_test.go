package forward

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/portcullis/portcullis/rules"
)

// TestNoGoroutineLeaks runs every kind of exchange (plain, tunnel, inspected over
// HTTP/1.1 and HTTP/2, WebSocket through inspection, block page over TLS) and checks
// that once clients and servers are closed, the goroutine count returns to where it
// was.
func TestNoGoroutineLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("work", func(t *testing.T) {
		env := newInspectEnv(t, originHandler())
		policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
			if f.Host == "tunnel.example" {
				return rules.Verdict{Action: rules.ActionTunnel, Rule: "t"}
			}
			return inspectPolicy(f)
		})
		tp := startProxy(t, env.proxyOpts(t, policy, &Config{CAClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
		for _, h2 := range []bool{false, true} {
			c := env.client(t, tp, h2)
			for _, u := range []string{env.url("example.com", "/a"), env.url("blocked.example", "/b"), env.url("example.com", "/blocked/c")} {
				resp, err := c.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		plain := newRecordingOrigin(t)
		resp, err := tp.client(t).Get(plain.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// The origin's certificate does not name tunnel.example; the point here is
		// only that the tunnel (not inspection) carries the exchange.
		tr := &http.Transport{Proxy: http.ProxyURL(tp.url), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		resp, err = (&http.Client{Transport: tr}).Get(env.url("tunnel.example", "/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.TLS.PeerCertificates[0].Issuer.CommonName == "Portcullis inspection CA" {
			t.Fatal("tunnel.example was inspected")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling an external effect, with a deadline
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
