package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// echoHandler answers: /echo returns the request body with its SHA-256 and
// the request trailers as response trailers; /big?n= writes n bytes in
// pieces; anything else says who it saw.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			h := sha256.New()
			w.Header().Set("Trailer", "Body-Sha256, Got-Trailer")
			w.WriteHeader(200)
			n, err := io.Copy(io.MultiWriter(w, h), r.Body)
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			w.Header().Set("Body-Sha256", hex.EncodeToString(h.Sum(nil)))
			w.Header().Set("Got-Trailer", r.Trailer.Get("Client-Trailer"))
			w.Header().Set(http.TrailerPrefix+"Body-Len", fmt.Sprint(n))
		case "/big":
			var n int
			fmt.Sscan(r.URL.Query().Get("n"), &n)
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
			for n > 0 {
				k := min(n, len(chunk))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
		default:
			fmt.Fprintf(w, "%s %s %s host=%s", r.Proto, r.Method, r.URL.RequestURI(), r.Host)
		}
	})
}

func goClient(ts *tlsServer) *http.Client {
	return &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.pool}}, Timeout: 60 * time.Second}
}

// TestGoClient: Go's HTTP/2 client through the mux — small answers, a
// large body both ways with trailers both ways, and many concurrent
// streams on one connection.
func TestGoClient(t *testing.T) {
	ts := serveTLS(t, &Server{Handler: echoHandler(), MaxConcurrentStreams: 50})
	cl := goClient(ts)
	base := "https://" + ts.addr

	res, err := cl.Get(base + "/hello?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "HTTP/2.0 GET /hello?x=1 host="+ts.addr || res.ProtoMajor != 2 {
		t.Fatalf("got %q (%s)", body, res.Proto)
	}
	if res.ContentLength != int64(len(body)) || res.Header.Get("Content-Type") == "" || res.Header.Get("Date") == "" {
		t.Errorf("header %v, length %d", res.Header, res.ContentLength)
	}

	// 8 MiB up, echoed down, trailers both ways.
	payload := bytes.Repeat([]byte("portcullis h2 "), 8<<20/14)
	sum := sha256.Sum256(payload)
	req, _ := http.NewRequest("POST", base+"/echo", io.MultiReader(bytes.NewReader(payload)))
	req.ContentLength = -1
	req.Trailer = http.Header{"Client-Trailer": nil}
	req.Body = &trailerBody{r: bytes.NewReader(payload), set: func() { req.Trailer.Set("Client-Trailer", "yes") }}
	res, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes, err %v", len(got), err)
	}
	if res.Trailer.Get("Body-Sha256") != hex.EncodeToString(sum[:]) || res.Trailer.Get("Got-Trailer") != "yes" ||
		res.Trailer.Get("Body-Len") != fmt.Sprint(len(payload)) {
		t.Errorf("trailers %v", res.Trailer)
	}

	res, err = cl.Get(base + "/big?n=20000000")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || n != 20000000 {
		t.Fatalf("big: %d bytes, %v", n, err)
	}

	// 400 concurrent requests on one connection (limit 50 streams).
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Go(func() {
			res, err := cl.Get(fmt.Sprintf("%s/r%d", base, i))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if want := fmt.Sprintf("HTTP/2.0 GET /r%d host=%s", i, ts.addr); string(b) != want {
				errs <- fmt.Errorf("got %q want %q", b, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// trailerBody reads r and calls set once r is exhausted (so the request's
// trailers are filled before the client sends them).
type trailerBody struct {
	r   io.Reader
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.set != nil {
		b.set()
		b.set = nil
	}
	return n, err
}
func (b *trailerBody) Close() error { return nil }

// TestCurl: curl --http2 with a 5 MiB upload and a 16 MiB download.
func TestCurl(t *testing.T) {
	curl := need(t, "curl")
	ts := serveTLS(t, &Server{Handler: echoHandler()})
	dir := t.TempDir()
	up := filepath.Join(dir, "up")
	payload := bytes.Repeat([]byte("curl-upload."), 5<<20/12)
	if err := os.WriteFile(up, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	down := filepath.Join(dir, "down")
	out, err := exec.Command(curl, "-sS", "--http2", "--cacert", ts.caFile, "-o", down, "-w", "%{http_version} %{http_code}",
		"--data-binary", "@"+up, "https://"+ts.addr+"/echo").CombinedOutput()
	if err != nil || string(out) != "2 200" {
		t.Fatalf("curl upload: %s %v", out, err)
	}
	if got, _ := os.ReadFile(down); !bytes.Equal(got, payload) {
		t.Fatalf("echo through curl: %d bytes", len(got))
	}
	out, err = exec.Command(curl, "-sS", "--http2", "--cacert", ts.caFile, "-o", down, "-w", "%{http_version} %{size_download}",
		"https://"+ts.addr+"/big?n=16777216").CombinedOutput()
	if err != nil || string(out) != "2 16777216" {
		t.Fatalf("curl download: %s %v", out, err)
	}
}

// TestH2load: h2load, 4 connections × 20 streams, every request answered.
func TestH2load(t *testing.T) {
	h2load := need(t, "h2load")
	ts := serveTLS(t, &Server{Handler: echoHandler()})
	out, err := exec.Command(h2load, "-n", "4000", "-c", "4", "-m", "20", "https://"+ts.addr+"/x").CombinedOutput()
	if err != nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "4000 succeeded, 0 failed, 0 errored") || !strings.Contains(string(out), "Application protocol: h2") {
		t.Fatalf("h2load:\n%s", out)
	}
}

// TestChromium: headless Chromium loads a page over the mux with HTTP/2.
func TestChromium(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("chromium tests skipped with -short")
	}
	chromium := need(t, "chromium")
	var seen sync.Map
	ts := serveTLS(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.Path, r.Proto)
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<html><body><p id="p">`+strings.Repeat("x", 100000)+`</p><img src="/a.png"><img src="/b.png"><script>document.title="proto-ok"</script></body></html>`)
			return
		}
		w.WriteHeader(404)
	})})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--ignore-certificate-errors",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", "https://"+ts.addr+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if !strings.Contains(string(out), "<title>proto-ok</title>") || !strings.Contains(string(out), strings.Repeat("x", 100000)) {
		t.Fatalf("page not rendered: %.300s", out)
	}
	for _, p := range []string{"/", "/a.png", "/b.png"} {
		if v, ok := seen.Load(p); !ok || v != "HTTP/2.0" {
			t.Errorf("%s: %v", p, v)
		}
	}
}

// TestH2CPriorKnowledge: h2c (HTTP/2 without TLS, prior knowledge) with
// curl and with Go's client.
func TestH2CPriorKnowledge(t *testing.T) {
	srv := &Server{Handler: echoHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { srv.ServeConn(ctx, c) })
		}
	})
	defer func() { ln.Close(); cancel(); wg.Wait() }()
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	res, err := cl.Get("http://" + ln.Addr().String() + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := "HTTP/2.0 GET /plain host=" + ln.Addr().String(); string(b) != want {
		t.Fatalf("got %q", b)
	}
	curl := need(t, "curl")
	out, err := exec.Command(curl, "-sS", "--http2-prior-knowledge", "-w", " %{http_version}", "http://"+ln.Addr().String()+"/c").CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), " 2") || !strings.HasPrefix(string(out), "HTTP/2.0 GET /c") {
		t.Fatalf("curl: %s %v", out, err)
	}
}
