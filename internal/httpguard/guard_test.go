package httpguard

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// origin is a handler that records what reached it and answers with the
// method, path and body it read.
type origin struct {
	mu   sync.Mutex
	seen []string
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.seen = append(o.seen, r.Method+" "+r.URL.Path)
	o.mu.Unlock()
	if r.Method == http.MethodConnect {
		http.Error(w, "no tunnels here", http.StatusMethodNotAllowed) // the connection goes on
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusInternalServerError)
		return
	}
	io.WriteString(w, fmt.Sprintf("%s %s %q tls=%v proto=%s", r.Method, r.URL.Path, body, r.TLS != nil, r.Proto))
}

func (o *origin) paths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, s := range o.seen {
		out = append(out, strings.Fields(s)[1])
	}
	return out
}

// server is a guarded http.Server on loopback.
type server struct {
	addr   string
	origin *origin
	tls    *tls.Config // client config, for TLS servers
}

func startServer(t *testing.T, withTLS bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{}
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 5 * time.Second}
	s := &server{addr: ln.Addr().String(), origin: o}
	done := make(chan error, 1)
	if withTLS {
		cert, pool := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		s.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		go func() { done <- ServeTLS(srv, ln, nil) }()
	} else {
		go func() { done <- srv.Serve(NewListener(ln, nil)) }()
	}
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "guard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// dial opens a raw client connection (TLS with ALPN http/1.1 for TLS servers).
func (s *server) dial(t *testing.T) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if s.tls != nil {
		cfg := s.tls.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		c, err = tls.Dial("tcp", s.addr, cfg)
	} else {
		c, err = net.Dial("tcp", s.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// exchange writes raw and reads want responses; it returns their status codes
// and bodies and whether the server then closed the connection (EOF).
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, raw string, want int) (codes []int, bodies []string) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
	}
	for range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading response %d: %v", len(codes)+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode)
		bodies = append(bodies, string(b))
		if resp.StatusCode == http.StatusBadRequest && !resp.Close {
			t.Errorf("400 without Connection: close: %v", resp.Header)
		}
	}
	return codes, bodies
}

// wantEOF asserts that the server closes the connection with nothing more.
func wantEOF(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("want EOF, got %v (after %q)", err, rest)
	}
	if len(rest) > 0 {
		t.Fatalf("bytes after the last response: %q", rest)
	}
}

// wantOpen asserts that the connection still serves requests.
func wantOpen(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	codes, _ := exchange(t, c, br, "GET /still-open HTTP/1.1\r\nHost: x\r\n\r\n", 1)
	if codes[0] != http.StatusOK {
		t.Fatalf("connection not reusable: %d", codes[0])
	}
}

const (
	clte = "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
	tecl = "POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nA\r\n0\r\n\r\n"
	get  = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
)

// refusedCases are heads that must get 400 and a closed connection.
var refusedCases = map[string]string{
	"CL then TE":            clte,
	"TE then CL":            tecl,
	"lower case":            "POST /smuggle HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\n",
	"TE not chunked":        "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: gzip\r\n\r\nA",
	"bare LF lines":         "POST /smuggle HTTP/1.1\nHost: x\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\r\n\r\n",
	"TE in HTTP/1.0":        "POST /smuggle HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"folded TE":             "POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"folded CL":             "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 1\r\n\r\nA",
	"folded other field":    "GET /a HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"folded with a tab":     "GET /a HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n\tb\r\n\r\n",
	"with 100-continue":     "POST /smuggle HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"CL of leading zeros":   "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 0000000000000000000000000\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"space before colon CL": "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length : 32\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
	"space before colon TE": "POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	"space in another name": "GET /smuggle HTTP/1.1\r\nHost: x\r\nX Forwarded: a\r\n\r\n",
	"TE value with spaces":  "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n",
}

func testRefused(t *testing.T, withTLS bool) {
	for name, raw := range refusedCases {
		t.Run(name, func(t *testing.T) {
			t.Run("first", func(t *testing.T) {
				s := startServer(t, withTLS)
				c := s.dial(t)
				br := bufio.NewReader(c)
				codes, _ := exchange(t, c, br, raw, 1)
				if codes[0] != http.StatusBadRequest {
					t.Fatalf("status %d, want 400", codes[0])
				}
				wantEOF(t, c, br)
				if p := s.origin.paths(); len(p) != 0 {
					t.Fatalf("the handler saw %v", p)
				}
			})
			t.Run("keep-alive second", func(t *testing.T) {
				s := startServer(t, withTLS)
				c := s.dial(t)
				br := bufio.NewReader(c)
				if codes, _ := exchange(t, c, br, get, 1); codes[0] != http.StatusOK {
					t.Fatalf("first: %d", codes[0])
				}
				if codes, _ := exchange(t, c, br, raw, 1); codes[0] != http.StatusBadRequest {
					t.Fatalf("second: %d, want 400", codes[0])
				}
				wantEOF(t, c, br)
				if p := s.origin.paths(); len(p) != 1 || p[0] != "/first" {
					t.Fatalf("the handler saw %v", p)
				}
			})
			t.Run("pipelined second", func(t *testing.T) {
				s := startServer(t, withTLS)
				c := s.dial(t)
				br := bufio.NewReader(c)
				post := withBody("POST /first HTTP/1.1\r\nHost: x\r\n", "Content-Length: 5\r\nTransfer-Encoding: x")
				codes, _ := exchange(t, c, br, post+raw, 2)
				if codes[0] != http.StatusOK || codes[1] != http.StatusBadRequest {
					t.Fatalf("statuses %v, want [200 400]", codes)
				}
				wantEOF(t, c, br)
				if p := s.origin.paths(); len(p) != 1 || p[0] != "/first" {
					t.Fatalf("the handler saw %v", p)
				}
			})
		})
	}
}

// acceptedCases are requests that must be served, with the connection kept.
var acceptedCases = map[string]struct{ raw, body string }{
	"chunked":                 {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"},
	"chunked with extensions": {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d;e\"\r\nhello\r\n1 \r\n!\r\n0;z\r\n\r\n", "hello!"},
	"chunked with trailers":   {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 9\r\nX-T: y\r\n\r\n", "abc"},
	"body naming both fields": {withBody("POST /a HTTP/1.1\r\nHost: x\r\n", bothFields), bothFields},
	"chunk naming both":       {fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(bothFields), bothFields), bothFields},
	"similar field names":     {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Lengthy: 1\r\nTransfer-Encodings: chunked\r\nContent-Type: text/plain\r\nTE: trailers\r\nContent-Length: 2\r\n\r\nok", "ok"},
	"HTTP/1.0 with CL":        {"POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "ok"},
	"leading CRLF after POST": {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz\r\n", "z"},
}

// bothFields is a body that looks like the two fields.
const bothFields = "X: 1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"

// withBody returns head (without its empty line) with a Content-Length for
// body, and body.
func withBody(head, body string) string {
	return fmt.Sprintf("%sContent-Length: %d\r\n\r\n%s", head, len(body), body)
}

func testAccepted(t *testing.T, withTLS bool) {
	s := startServer(t, withTLS)
	for name, tc := range acceptedCases {
		t.Run(name, func(t *testing.T) {
			c := s.dial(t)
			br := bufio.NewReader(c)
			codes, bodies := exchange(t, c, br, tc.raw, 1)
			if codes[0] != http.StatusOK || !strings.Contains(bodies[0], fmt.Sprintf("%q", tc.body)) {
				t.Fatalf("%d %s, want 200 with body %q", codes[0], bodies[0], tc.body)
			}
			wantOpen(t, c, br)
			// The same pipelined behind a request and before another.
			codes, bodies = exchange(t, c, br, get+tc.raw+get, 3)
			if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 || !strings.Contains(bodies[1], fmt.Sprintf("%q", tc.body)) {
				t.Fatalf("pipelined: %v %q", codes, bodies)
			}
			wantOpen(t, c, br)
		})
	}
}

func TestRefused(t *testing.T)     { testRefused(t, false) }
func TestRefusedTLS(t *testing.T)  { testRefused(t, true) }
func TestAccepted(t *testing.T)    { testAccepted(t, false) }
func TestAcceptedTLS(t *testing.T) { testAccepted(t, true) }

// TestAfterRefusedConnect: a CONNECT answered without a tunnel leaves the
// connection to HTTP, and the guard still follows it.
func TestAfterRefusedConnect(t *testing.T) {
	s := startServer(t, false)
	c := s.dial(t)
	br := bufio.NewReader(c)
	codes, _ := exchange(t, c, br, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"+get+clte, 3)
	if fmt.Sprint(codes) != "[405 200 400]" {
		t.Fatalf("statuses %v, want [405 200 400]", codes)
	}
	wantEOF(t, c, br)
}

// TestExpectContinue: a client waiting for 100 Continue gets it and the
// connection goes on; one whose head is refused gets the 400 instead.
func TestExpectContinue(t *testing.T) {
	s := startServer(t, false)
	c := s.dial(t)
	br := bufio.NewReader(c)
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	codes, bodies := exchange(t, c, br, "hello", 1)
	if codes[0] != 200 || !strings.Contains(bodies[0], `"hello"`) {
		t.Fatalf("%v %q", codes, bodies)
	}
	wantOpen(t, c, br)
}

// TestRefusalSurvivesUnreadBody: a client still sending the body of a refused
// request reads the 400 and then the end of the stream, not a reset (Close
// half-closes and drains before closing).
func TestRefusalSurvivesUnreadBody(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		s := startServer(t, withTLS)
		c := s.dial(t)
		br := bufio.NewReader(c)
		io.WriteString(c, "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nTransfer-Encoding: chunked\r\n\r\n")
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			chunk := []byte(strings.Repeat("x", 16<<10))
			for range 16 {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		codes, _ := exchange(t, c, br, "", 1)
		if codes[0] != http.StatusBadRequest {
			t.Fatalf("tls=%v: status %d", withTLS, codes[0])
		}
		wantEOF(t, c, br)
		<-sent
	}
}
