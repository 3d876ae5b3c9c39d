package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
)

// h3Origin is a member the tests can kill (listener and connections at once).
type h3Origin struct {
	name string
	addr string
	hits atomic.Int64
	srv  *http.Server
	done chan struct{}
	// slow holds requests for /slow/ until it is closed.
	slow chan struct{}
}

func startH3Origin(t *testing.T, name string) *h3Origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &h3Origin{name: name, addr: ln.Addr().String(), done: make(chan struct{}), slow: make(chan struct{})}
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		o.hits.Add(1)
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-o.slow
		}
		if strings.HasPrefix(r.URL.Path, "/static/") {
			w.Header().Set("Cache-Control", "public, max-age=600")
		}
		fmt.Fprintf(w, "%s %s", o.name, r.URL.Path)
	})}
	go func() { defer close(o.done); o.srv.Serve(ln) }()
	t.Cleanup(o.kill)
	return o
}

func (o *h3Origin) kill() {
	select {
	case <-o.slow:
	default:
		close(o.slow)
	}
	o.srv.Close()
	<-o.done
}

// h3Policy writes a reverse policy with HTTP/3 on its TLS listener, the
// members given in the pool "app" (path /static/ cached), an access log and
// an admin listener, and returns the policy's path and the log's.
func h3Policy(t *testing.T, members []string, extra string) (policy, logPath string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "access.log")
	var ms strings.Builder
	for _, m := range members {
		fmt.Fprintf(&ms, "      - url: http://%s\n", m)
	}
	policy = filepath.Join(dir, "p.yaml")
	err := os.WriteFile(policy, []byte(fmt.Sprintf(`reverse:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  http3: true
  tls: {mode: internal, names: [app.example.test]}
  state_dir: state
%s  routes:
    - {name: static, host: [app.example.test], path_prefix: /static/, pool: app, cache: static}
    - {name: app, host: [app.example.test], pool: app}
pools:
  app:
    members:
%s    health: {path: /health, interval: 200ms, timeout: 2s, rise: 1, fall: 1}
    retries: {max: 2}
cache: {max_bytes: 16MiB}
cache_policies:
  static: {enabled: true}
admin: {listen: "127.0.0.1:0", log: {format: json, path: %q}}
`, extra, ms.String(), logPath)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return policy, logPath
}

// h3Roots is the internal CA the binary wrote beside policy.
func h3Roots(t *testing.T, policy string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(filepath.Dir(policy), "state", "reverse-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	return roots
}

// h3Client is quic-go's HTTP/3 client, dialing addr (UDP) whatever the URL's host.
func h3Client(t *testing.T, addr string, roots *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tc, qc)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func h3Get(c *http.Client, u string) (*http.Response, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestHTTP3ThroughBinary: with reverse.http3 the binary serves HTTP/3 on the
// TLS listener's port (UDP), advertises it with Alt-Svc on HTTP/1.1 and
// HTTP/2, and an HTTP/3 request goes through the same door: a cached object
// is a hit the second time, a proxied one reaches the member, the access log
// says HTTP/3.0 and the metrics count it.
func TestHTTP3ThroughBinary(t *testing.T) {
	o := startH3Origin(t, "m0")
	policy, logPath := h3Policy(t, []string{o.addr}, "")
	_, addrs := runPolicy(t, policy)
	tlsAddr, quicAddr := addrs["reverse-tls"], addrs["reverse-quic"]
	if tlsAddr == "" || quicAddr != tlsAddr {
		t.Fatalf("reverse-tls %q and reverse-quic %q: want the same address", tlsAddr, quicAddr)
	}
	_, port, _ := net.SplitHostPort(tlsAddr)
	roots := h3Roots(t, policy)

	// HTTP/1.1 and HTTP/2 over TLS advertise HTTP/3 on the same port.
	wantAltSvc := `h3=":` + port + `"; ma=86400`
	for _, h2 := range []bool{false, true} {
		c := resolving(tlsAddr, roots)
		c.Transport.(*http.Transport).ForceAttemptHTTP2 = h2
		resp, err := c.Get("https://app.example.test/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Alt-Svc"); got != wantAltSvc || resp.StatusCode != 200 {
			t.Errorf("%s: %d, Alt-Svc %q, want %q", resp.Proto, resp.StatusCode, got, wantAltSvc)
		}
		if h2 && resp.ProtoMajor != 2 {
			t.Errorf("asked for HTTP/2, got %s", resp.Proto)
		}
	}

	c := h3Client(t, quicAddr, roots)
	// A proxied request.
	resp, body, err := h3Get(c, "https://app.example.test/page")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body != "m0 /page" || resp.ProtoMajor != 3 {
		t.Errorf("proxied over HTTP/3: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	// A cached object: the second request is a hit, the member sees one.
	before := o.hits.Load()
	for i, want := range []string{"miss", "hit"} {
		resp, body, err := h3Get(c, "https://app.example.test/static/a.css")
		if err != nil {
			t.Fatal(err)
		}
		cs := resp.Header.Get("Cache-Status")
		if resp.StatusCode != 200 || body != "m0 /static/a.css" || !strings.Contains(cs, want) || (want == "hit" && strings.Contains(cs, "fwd=")) {
			t.Errorf("request %d over HTTP/3: %d %q Cache-Status %q, want %s", i+1, resp.StatusCode, body, cs, want)
		}
	}
	if n := o.hits.Load() - before; n != 1 {
		t.Errorf("the member saw %d requests for the cached object, want 1", n)
	}

	// The access log names the protocol of each.
	waitUntil(t, "3 HTTP/3.0 lines in the access log", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), `"proto":"HTTP/3.0"`) == 3
	})
	// The metrics count requests by protocol.
	waitUntil(t, "HTTP/3.0 counted in the metrics", func() bool {
		resp, err := http.Get("http://" + addrs["admin"] + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == `portcullis_http_requests_by_protocol_total{door="reverse",proto="HTTP/3.0"} 3` {
				return true
			}
		}
		return false
	})
	// The status page's Doors card counts the reverse door by protocol, over TLS.
	want := []doorRow{
		{Door: "reverse", Proto: "HTTP/1.1", TLS: true, Requests: 1},
		{Door: "reverse", Proto: "HTTP/2.0", TLS: true, Requests: 1},
		{Door: "reverse", Proto: "HTTP/3.0", TLS: true, Requests: 3},
	}
	waitDoors(t, addrs["admin"], want)
}

// TestHTTP3MemberKilledUnderLoad: HTTP/3 clients keep getting 200s while a
// member of the pool is killed (its requests retried on the other).
func TestHTTP3MemberKilledUnderLoad(t *testing.T) {
	m0, m1 := startH3Origin(t, "m0"), startH3Origin(t, "m1")
	policy, _ := h3Policy(t, []string{m0.addr, m1.addr}, "")
	_, addrs := runPolicy(t, policy)
	roots := h3Roots(t, policy)

	var clients []*http.Client
	for range 8 {
		clients = append(clients, h3Client(t, addrs["reverse-quic"], roots))
	}
	load := startH3Load(clients, "/load")
	waitUntil(t, "traffic on both members", func() bool { return m0.hits.Load() > 20 && m1.hits.Load() > 20 })
	m1.kill()
	after := m0.hits.Load()
	waitUntil(t, "more traffic on the member left", func() bool { return m0.hits.Load() > after+100 })
	load.finish(t, "HTTP/3 clients")
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHTTP3BadInput sends the QUIC listener garbage datagrams, malformed
// HTTP/3 frames, an oversized header block, a flood of streams on one
// connection and a flood of connections from one address: each is refused,
// and a normal HTTP/3 client on another connection gets a 200 for every
// request meanwhile.
func TestHTTP3BadInput(t *testing.T) {
	o := startH3Origin(t, "m0")
	policy, _ := h3Policy(t, []string{o.addr}, "  limits: {max_conns_per_client: 4}\n")
	p, addrs := runPolicy(t, policy)
	quicAddr := addrs["reverse-quic"]
	roots := h3Roots(t, policy)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "app.example.test", NextProtos: []string{http3.NextProtoH3}}

	// The normal client, on 127.0.0.1, all along.
	normal := h3Client(t, quicAddr, roots)
	load := startH3Load([]*http.Client{normal}, "/normal")
	defer load.finish(t, "the normal client")
	progress := func(what string) {
		t.Helper()
		n := load.ok.Load()
		waitUntil(t, "the normal client served after "+what, func() bool { return load.ok.Load() > n+5 })
	}
	progress("start")

	// Attackers send from other loopback addresses, each with its own
	// per-client count (connections closed by one case may still count while
	// the server reads their close).
	nextAddr := 2
	attacker := func(t *testing.T) *quic.Transport {
		ip := fmt.Sprintf("127.0.0.%d", nextAddr)
		nextAddr++
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Skipf("cannot bind %s: %v", ip, err)
		}
		tr := &quic.Transport{Conn: pc}
		t.Cleanup(func() { tr.Close(); pc.Close() })
		return tr
	}
	dial := func(t *testing.T, tr *quic.Transport) (*quic.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ua, _ := net.ResolveUDPAddr("udp", quicAddr)
		return tr.Dial(ctx, ua, tlsConf, &quic.Config{})
	}
	// refused says whether err is the server refusing (a QUIC stream or
	// connection error), not a timeout.
	refused := func(err error) bool {
		var se *quic.StreamError
		var ae *quic.ApplicationError
		var te *quic.TransportError
		return errors.As(err, &se) || errors.As(err, &ae) || errors.As(err, &te)
	}

	t.Run("garbage datagrams", func(t *testing.T) {
		c, err := net.Dial("udp", quicAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 1500)
		for i := range 3000 {
			n := 1 + i%len(buf)
			for j := range n {
				buf[j] = byte(i*31 + j*7)
			}
			if i%3 == 0 && n > 6 { // a long header, version 1: looks like an Initial
				buf[0], buf[1], buf[2], buf[3], buf[4] = 0xc3, 0, 0, 0, 1
			}
			c.Write(buf[:n])
		}
		progress("garbage datagrams")
	})

	t.Run("malformed frames", func(t *testing.T) {
		for name, b := range map[string][]byte{
			"DATA before HEADERS":          {0x00, 0x03, 'a', 'b', 'c'},
			"HEADERS with a bad QPACK":     {0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff},
			"HEADERS longer than the data": {0x01, 0x40, 0x50, 0x00, 0x00},
			"an HTTP/2 frame type":         {0x02, 0x01, 0x00},
			"SETTINGS on a request stream": {0x04, 0x00},
			"a huge frame length":          {0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		} {
			conn, err := dial(t, attacker(t))
			if err != nil {
				t.Fatalf("%s: dial: %v", name, err)
			}
			str, err := conn.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			str.Write(b)
			str.Close()
			str.SetReadDeadline(time.Now().Add(15 * time.Second))
			got, err := io.ReadAll(str)
			if code := h3Status(got); !refused(err) && (code < 400 || code > 499) {
				t.Errorf("%s: read %q (status %d), %v; want a 4xx or the stream or connection refused", name, got, code, err)
			}
			conn.CloseWithError(0, "")
		}
		progress("malformed frames")
	})

	t.Run("oversized header block", func(t *testing.T) {
		c := h3Client(t, quicAddr, roots)
		req, _ := http.NewRequest("GET", "https://app.example.test/big", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("100 KiB of headers: %d, want 431", resp.StatusCode)
		}
		progress("an oversized header block")
	})

	t.Run("stream flood", func(t *testing.T) {
		conn, err := dial(t, attacker(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		opened := 0
		for range 1000 {
			str, err := conn.OpenStream()
			if err != nil {
				break
			}
			str.Write([]byte{0x01}) // half a frame: the server waits for the rest
			opened++
		}
		if opened != 100 {
			t.Errorf("one connection opened %d request streams at once, want the limit of 100", opened)
		}
		progress("a stream flood")
	})

	t.Run("connection flood", func(t *testing.T) {
		tr := attacker(t)
		var conns []*quic.Conn
		refusedN := 0
		for range 10 {
			conn, err := dial(t, tr)
			if err != nil {
				if !refused(err) {
					t.Fatalf("dial: %v, want refused", err)
				}
				refusedN++
				continue
			}
			conns = append(conns, conn)
		}
		if len(conns) != 4 || refusedN != 6 {
			t.Errorf("10 connections from one address: %d accepted, %d refused; want 4 and 6 (max_conns_per_client 4)", len(conns), refusedN)
		}
		// A slot is freed when a connection ends.
		if len(conns) > 0 {
			conns[0].CloseWithError(0, "")
			waitUntil(t, "a new connection accepted once one closed", func() bool {
				c, err := dial(t, tr)
				if err != nil {
					return false
				}
				conns[0] = c
				return true
			})
		}
		for _, c := range conns {
			c.CloseWithError(0, "")
		}
		progress("a connection flood")
	})

	if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("portcullis is gone: %v", err)
	}
}

// h3Status is the :status of the HEADERS frame that b (a response stream's
// bytes) starts with, 0 when there is none.
func h3Status(b []byte) int {
	typ, n, err := quicvarint.Parse(b)
	if err != nil || typ != 0x01 {
		return 0
	}
	b = b[n:]
	l, n, err := quicvarint.Parse(b)
	if err != nil || uint64(len(b)-n) < l {
		return 0
	}
	next := qpack.NewDecoder().Decode(b[n : n+int(l)])
	for {
		hf, err := next()
		if err != nil {
			return 0
		}
		if hf.Name == ":status" {
			code, _ := strconv.Atoi(hf.Value)
			return code
		}
	}
}

// TestHTTP3FollowsReloads: a reload without reverse.http3 closes the UDP
// socket (its port can be bound again) and stops the Alt-Svc; a reload that
// turns it back on while the port is taken fails with the bind error and the
// old policy keeps serving; once the port is free, the next reload serves
// HTTP/3 again on the kept TLS listener's port.
func TestHTTP3FollowsReloads(t *testing.T) {
	o := startH3Origin(t, "m0")
	policy, _ := h3Policy(t, []string{o.addr}, "")
	p, addrs := runPolicy(t, policy)
	tlsAddr := addrs["reverse-tls"]
	roots := h3Roots(t, policy)
	setHTTP3 := func(on bool) {
		t.Helper()
		b, err := os.ReadFile(policy)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(strings.Replace(string(b), "http3: true", "http3: false", 1), "http3: false", fmt.Sprintf("http3: %v", on), 1)
		if err := os.WriteFile(policy, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		p.cmd.Process.Signal(syscall.SIGHUP)
	}
	altSvc := func() string {
		t.Helper()
		resp, err := resolving(tlsAddr, roots).Get("https://app.example.test/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Alt-Svc")
	}
	h3OK := func() error {
		c := h3Client(t, tlsAddr, roots)
		resp, body, err := h3Get(c, "https://app.example.test/again")
		if err == nil && (resp.StatusCode != 200 || body != "m0 /again") {
			err = fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return err
	}
	if err := h3OK(); err != nil {
		t.Fatal(err)
	}

	setHTTP3(false)
	p.waitFor(t, "policy reloaded")
	var held net.PacketConn
	waitUntil(t, "the UDP port free once HTTP/3 is off", func() bool {
		pc, err := net.ListenPacket("udp", tlsAddr)
		held = pc
		return err == nil
	})
	if got := altSvc(); got != "" {
		t.Errorf("Alt-Svc %q with HTTP/3 off", got)
	}

	setHTTP3(true)
	line := p.waitFor(t, "reload failed")
	if want := "cannot listen for reverse-quic on " + tlsAddr; !strings.Contains(line, want) {
		t.Errorf("reload with the UDP port taken logged %q, want %q", line, want)
	}
	if got := altSvc(); got != "" {
		t.Errorf("Alt-Svc %q after the failed reload", got)
	}

	held.Close()
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, "policy reloaded")
	if err := h3OK(); err != nil {
		t.Errorf("HTTP/3 after the port was freed and the policy reloaded: %v", err)
	}
	if got := altSvc(); !strings.HasPrefix(got, `h3=":`) {
		t.Errorf("Alt-Svc %q after HTTP/3 came back", got)
	}
}

// TestValidateHTTP3NeedsTLSListen: reverse.http3 without a TLS listener is
// refused at its line.
func TestValidateHTTP3NeedsTLSListen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(p, []byte(`reverse:
  listen: ["127.0.0.1:0"]
  http3: true
  routes: [{name: app, pool: app}]
pools:
  app: {members: [{url: "http://127.0.0.1:9"}]}
`), 0o644)
	_, errOut, code := runCLI(t, "validate", "--config", p)
	if want := p + ":3:10: reverse.http3: needs tls_listen"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant %q", code, errOut, want)
	}
}

// h3Load is clients requesting path in a loop (the origin answers "NAME PATH"),
// counting answers and failures until finish.
type h3Load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startH3Load(clients []*http.Client, path string) *h3Load {
	l := &h3Load{stop: make(chan struct{})}
	for _, c := range clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, body, err := h3Get(c, "https://app.example.test"+path)
				if err == nil && (resp.StatusCode != 200 || !strings.HasSuffix(body, " "+path)) {
					err = fmt.Errorf("%d %q", resp.StatusCode, body)
				}
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

// finish stops the clients and fails t if a request failed or none was answered.
func (l *h3Load) finish(t *testing.T, who string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%s: %d of %d requests failed (first: %v)", who, n, n+l.ok.Load(), l.firstErr.Load())
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no answer", who)
	}
}

// TestHTTP3DrainsOnShutdown: SIGTERM while an HTTP/3 response is in flight:
// the response completes, then the process exits 0.
func TestHTTP3DrainsOnShutdown(t *testing.T) {
	o := startH3Origin(t, "m0")
	policy, _ := h3Policy(t, []string{o.addr}, "")
	p, addrs := runPolicy(t, policy)
	c := h3Client(t, addrs["reverse-quic"], h3Roots(t, policy))
	resp, err := c.Get("https://app.example.test/slow/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitFor(t, "draining")
	close(o.slow)
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "m0 /slow/x" {
		t.Fatalf("in-flight HTTP/3 body %q, err %v", body, err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("portcullis did not exit after SIGTERM")
	}
}
