package reverse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/internal/pool"
)

// testOrigin is a loopback member that answers with its name and counts hits.
type testOrigin struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

// newTestOrigin starts an origin; handler nil means "write the name".
func newTestOrigin(t *testing.T, name string, handler http.HandlerFunc) *testOrigin {
	t.Helper()
	o := &testOrigin{name: name}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		o.hits.Add(1)
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("X-Member", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *testOrigin) url() string { return o.srv.URL }

// door is a running reverse door on loopback.
type door struct {
	h       *Handler
	plain   string // host:port
	secure  string // host:port, "" without TLS
	caPool  *x509.CertPool
	stopped chan struct{}
	stop    func() // stops serving and waits
}

// startDoor builds pools and a Handler from cfg and serves it on loopback.
// Listen addresses in cfg are replaced by 127.0.0.1:0.
func startDoor(t *testing.T, cfg Config, pools map[string]*pool.Pool, opts Options) *door {
	t.Helper()
	cfg.Listen = []string{"127.0.0.1:0"}
	if cfg.TLS.Mode != "" || len(cfg.TLS.Certs) > 0 {
		cfg.TLSListen = []string{"127.0.0.1:0"}
		if cfg.StateDir == "" {
			cfg.StateDir = t.TempDir()
		}
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	opts.Config, opts.Pools = cfg, pools
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var tc *tls.Config
	d := &door{h: h, stopped: make(chan struct{})}
	if len(cfg.TLSListen) > 0 {
		if tc, err = ServerTLSConfig(&cfg, ""); err != nil {
			t.Fatal(err)
		}
		if cfg.TLS.Mode == "internal" {
			d.caPool = x509.NewCertPool()
			pem, err := os.ReadFile(CACertPath(&cfg, ""))
			if err != nil {
				t.Fatal(err)
			}
			d.caPool.AppendCertsFromPEM(pem)
		}
	}
	var stopPlain, stopSecure func()
	d.plain, stopPlain = serveDoor(t, &cfg, h, nil)
	if tc != nil {
		d.secure, stopSecure = serveDoor(t, &cfg, h, tc)
	}
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			stopPlain()
			if stopSecure != nil {
				stopSecure()
			}
			close(d.stopped)
		})
	}
	t.Cleanup(d.stop)
	return d
}

// serveDoor serves h on 127.0.0.1:0 as the engine serves the door's
// listeners (internal/h1 over accept and LimitListener, TLS and HTTP/2 with
// tc). It returns the address and the function that stops it: requests in
// flight finish, then every connection is closed (WebSockets included).
func serveDoor(t *testing.T, cfg *Config, h http.Handler, tc *tls.Config) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, TLSConfig: tc}
	ConfigureServer(srv, cfg, tc != nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(LimitListener(accept.New(ln, "reverse", nil, nil), cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerClient))
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
		<-done
	}
}

// newTestPool builds a pool over urls with cfg's other settings.
func newTestPool(t *testing.T, cfg pool.Config, urls ...string) *pool.Pool {
	t.Helper()
	for _, u := range urls {
		cfg.Members = append(cfg.Members, pool.MemberConfig{URL: u})
	}
	p, err := pool.New("p", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestMain runs the tests, then checks that they left no goroutines behind:
// every server, pool and client they start is stopped by a cleanup.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 && !testing.Short() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base+2 {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d at start\n%s", n, base, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

// client returns an HTTP client that sends every connection to addr whatever
// the URL's host (as curl --resolve does), trusting roots for TLS.
func client(t testing.TB, addr string, roots *x509.CertPool, h2 bool) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// fetch does one request and returns status, body and headers.
func fetch(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// waitFor polls cond until it holds or 5 s pass (observing an external effect).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
