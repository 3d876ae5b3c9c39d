package reverse

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/portcullis/portcullis/internal/pool"
)

// killable is an origin that can be killed and brought back on its address.
type killable struct {
	t    *testing.T
	addr string
	name string
	hits atomic.Int64
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func newKillable(t *testing.T, name string) *killable {
	k := &killable{t: t, name: name, addr: "127.0.0.1:0"}
	k.start()
	t.Cleanup(k.kill)
	return k
}

func (k *killable) start() {
	ln, err := net.Listen("tcp", k.addr)
	if err != nil {
		k.t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			k.hits.Add(1)
		}
		io.WriteString(w, k.name)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	k.mu.Lock()
	k.srv, k.done = srv, done
	k.mu.Unlock()
}

// kill closes the listener and every connection at once.
func (k *killable) kill() {
	k.mu.Lock()
	srv, done := k.srv, k.done
	k.srv = nil
	k.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

func TestMemberKilledUnderLoad(t *testing.T) {
	ms := []*killable{newKillable(t, "m0"), newKillable(t, "m1"), newKillable(t, "m2")}
	var urls []string
	for _, m := range ms {
		urls = append(urls, "http://"+m.addr)
	}
	p := newTestPool(t, pool.Config{
		Policy: pool.PolicyRoundRobin,
		// A generous check timeout: on a loaded machine a slow answer from a
		// live member must not count as a failure.
		Health: pool.HealthConfig{Path: "/health", Interval: 100 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2},
	}, urls...)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); p.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "p"}}}, map[string]*pool.Pool{"p": p}, Options{})
	c := client(t, d.plain, nil, false)

	const clients = 20
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://app.example.test/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	loadStart := time.Now()
	waitFor(t, "traffic on every member", func() bool { return ms[0].hits.Load() > 20 && ms[1].hits.Load() > 20 && ms[2].hits.Load() > 20 })

	killedAt := time.Now()
	ms[1].kill()
	waitFor(t, "the killed member marked down by its checks", func() bool { return !p.Status()[1].CheckHealthy })
	// fall=2 checks 100 ms apart, each refused at once: well within 2 s.
	if el := time.Since(killedAt); el > 2*time.Second {
		t.Errorf("marked down after %v", el)
	}
	before := ms[1].hits.Load()
	ms[1].start()
	waitFor(t, "the member back up", func() bool { return p.Status()[1].Healthy && p.Status()[1].CheckHealthy })
	waitFor(t, "the member serving again", func() bool { return ms[1].hits.Load() > before+20 })
	// Keep the load on for at least 2 s in all (the issue asks 10 s; the test
	// stays short, the property is the same).
	if rest := 2*time.Second - time.Since(loadStart); rest > 0 {
		<-time.After(rest)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d client requests failed (first: %v)", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, member down %v after the kill", ok.Load(), time.Since(killedAt))
}

func TestWebSocketThroughTLSWithHTTP2(t *testing.T) {
	o := newTestOrigin(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }).ServeHTTP(w, r)
			return
		}
		fmt.Fprintf(w, "proto %d", r.ProtoMajor)
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{TLS: TLSConfig{Mode: "internal"}, Routes: []Route{{Name: "app", Host: []string{"app.example.test"}, Pool: "app"}}}, pools, Options{})

	// Normal requests get HTTP/2.
	resp, err := client(t, d.secure, d.caPool, true).Get("https://app.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("client got HTTP/%d, want HTTP/2", resp.ProtoMajor)
	}
	// A WebSocket (HTTP/1.1 Upgrade on the same TLS listener) echoes.
	conn, err := tls.Dial("tcp", d.secure, &tls.Config{ServerName: "app.example.test", RootCAs: d.caPool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wcfg, err := websocket.NewConfig("wss://app.example.test/ws", "https://app.example.test")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(wcfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake through the door: %v", err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"hello", "through", "portcullis"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
}

// selfSigned writes a certificate for name and its key under dir.
func selfSigned(t *testing.T, dir, name string) CertFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	cf := CertFiles{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	os.WriteFile(cf.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(cf.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cf
}

// leafName handshakes with sni and returns the served certificate's first name.
func leafName(t *testing.T, addr, sni string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: roots, InsecureSkipVerify: roots == nil}) //nolint:gosec // inspecting the served leaf
	if err != nil {
		t.Fatalf("handshake for %s: %v", sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames[0]
}

func TestSNIPicksCertificate(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	routes := []Route{{Name: "a", Host: []string{"a.example.test", "*.wild.test"}, Pool: "app"}, {Name: "b", Host: []string{"b.example.test"}, Pool: "app"}}

	t.Run("internal", func(t *testing.T) {
		state := t.TempDir()
		d := startDoor(t, Config{StateDir: state, TLS: TLSConfig{Mode: "internal"}, Routes: routes}, pools, Options{})
		for sni, want := range map[string]string{"a.example.test": "a.example.test", "b.example.test": "b.example.test", "x.wild.test": "*.wild.test"} {
			if got := leafName(t, d.secure, sni, d.caPool); got != want {
				t.Errorf("SNI %s: served %s, want %s", sni, got, want)
			}
		}
		// The CA is created once: a second configuration reuses it.
		before, _ := os.ReadFile(filepath.Join(state, CACertFile))
		if _, err := ServerTLSConfig(&Config{StateDir: state, TLS: TLSConfig{Mode: "internal", Names: []string{"c.test"}}}, ""); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(filepath.Join(state, CACertFile))
		if string(before) != string(after) || len(before) == 0 {
			t.Error("the internal CA changed on a second start")
		}
		if fi, err := os.Stat(filepath.Join(state, CAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("CA key file: %v %v, want mode 0600", fi, err)
		}
	})
	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		certs := []CertFiles{selfSigned(t, dir, "x.test"), selfSigned(t, dir, "y.test")}
		d := startDoor(t, Config{TLS: TLSConfig{Certs: certs}, Routes: routes}, pools, Options{})
		for _, sni := range []string{"x.test", "y.test"} {
			if got := leafName(t, d.secure, sni, nil); got != sni {
				t.Errorf("SNI %s: served %s", sni, got)
			}
		}
	})
}

func TestStreamsPassThrough(t *testing.T) {
	next := make(chan struct{})
	gotFirst := make(chan struct{})
	o := newTestOrigin(t, "stream", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			rc.Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "data: 2\n\n")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/upload":
			br := bufio.NewReader(r.Body)
			line, _ := br.ReadString('\n')
			close(gotFirst) // the first chunk arrived before the client sent the rest
			rest, _ := io.ReadAll(br)
			fmt.Fprintf(w, "%s|%s", strings.TrimSpace(line), rest)
		}
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "app"}}}, pools, Options{})
	c := client(t, d.plain, nil, false)

	// SSE: the first event arrives while the origin holds the second back.
	resp, err := c.Get("http://app.example.test/sse")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("first event %q %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if string(rest) != "\ndata: 2\n\n" {
		t.Errorf("rest of stream %q", rest)
	}

	// Trailers.
	resp, err = c.Get("http://app.example.test/trailer")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "body" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("body %q trailer %v", body, resp.Trailer)
	}

	// Upload: the origin reads the first chunk before the client sends the rest.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("first\n"))
		select {
		case <-gotFirst:
			pw.Write([]byte("second"))
			pw.Close()
		case <-time.After(5 * time.Second):
			pw.CloseWithError(fmt.Errorf("upload was buffered: the origin never saw the first chunk"))
		}
	}()
	resp, err = c.Post("http://app.example.test/upload", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "first|second" {
		t.Errorf("upload echoed %q", body)
	}
}

func TestHashKeyFromHeaderAndCookie(t *testing.T) {
	for _, key := range []string{"header:X-User", "cookie:session"} {
		t.Run(key, func(t *testing.T) {
			var os []*testOrigin
			var urls []string
			for i := range 3 {
				o := newTestOrigin(t, fmt.Sprint("m", i), nil)
				os, urls = append(os, o), append(urls, o.url())
			}
			p := newTestPool(t, pool.Config{Policy: pool.PolicyHash, HashKey: key}, urls...)
			d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "p"}}}, map[string]*pool.Pool{"p": p}, Options{})
			c := client(t, d.plain, nil, false)
			used := map[string]bool{}
			for u := range 30 {
				hdr := map[string]string{"X-User": fmt.Sprint("user", u)}
				if strings.HasPrefix(key, "cookie") {
					hdr = map[string]string{"Cookie": fmt.Sprintf("session=s%d; other=1", u)}
				}
				_, first, _ := fetch(t, c, "GET", "http://app.example.test/", hdr)
				for range 3 {
					if _, again, _ := fetch(t, c, "GET", "http://app.example.test/", hdr); again != first {
						t.Fatalf("user %d went to %s then %s", u, first, again)
					}
				}
				used[first] = true
			}
			if len(used) < 2 {
				t.Errorf("30 users all on %v", used)
			}
		})
	}
}

func TestShutdownClosesWebSockets(t *testing.T) {
	o := newTestOrigin(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }).ServeHTTP(w, r)
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "app"}}}, pools, Options{})
	wcfg, _ := websocket.NewConfig("ws://app.example.test/ws", "http://app.example.test")
	conn, err := net.Dial("tcp", d.plain)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ws, err := websocket.NewClient(wcfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := websocket.Message.Send(ws, "ping"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "ping" {
		t.Fatalf("echo %q %v", got, err)
	}
	d.stop()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	err = websocket.Message.Receive(ws, &got)
	if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
		t.Fatalf("WebSocket still open after Serve returned: %v", err)
	}
}
