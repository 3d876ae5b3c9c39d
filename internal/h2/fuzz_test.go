package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// seen is what a handler saw of a request, in one comparable string.
func seen(r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		body = nil // a stream reset: how much arrived first is timing
	}
	var hdr []string
	for k, vv := range r.Header {
		hdr = append(hdr, fmt.Sprintf("%s=%q", k, vv))
	}
	slices.Sort(hdr)
	var tr []string
	for k, vv := range r.Trailer {
		tr = append(tr, fmt.Sprintf("%s=%q", k, vv))
	}
	slices.Sort(tr)
	return fmt.Sprintf("method=%q url=%q uri=%q host=%q proto=%s cl=%d header=%v trailer=%v body=%q err=%v",
		r.Method, r.URL.String(), r.RequestURI, r.Host, r.Proto, r.ContentLength, hdr, tr, body, err != nil)
}

// exchange sends one request (fields, then body and trailers when given)
// on a fresh connection served by serve, and returns what the handler saw
// ("" when the handler did not run).
func exchange(t *testing.T, serve func(context.Context, net.Conn) error, saw chan string, fields []string, body string, trailers []string) string {
	c := dialServe(t, serve)
	end := body == "" && trailers == nil
	c.headers(1, end, fields...)
	if body != "" {
		_ = c.fr.WriteData(1, trailers == nil, []byte(body))
	}
	if trailers != nil {
		c.headers(1, true, trailers...)
	}
	for {
		f := c.next()
		if f == nil {
			break
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			break
		}
		if f.Header().StreamID == 1 && (f.Header().Flags.Has(http2.FlagDataEndStream) || f.Header().Type == http2.FrameRSTStream) {
			break
		}
	}
	c.nc.Close()
	select {
	case s := <-saw:
		return s
	default:
		return ""
	}
}

// FuzzDifferential sends the same request to this mux and to Go's http2
// server; where both hand it to the handler, the handler must see the same
// request (method, URL, Host, header, length, body, trailers).
func FuzzDifferential(f *testing.F) {
	f.Add("GET", "https", "h2.test", "/a?b=c", "accept: */*\ncookie: a=1\ncookie: b=2", "", "")
	f.Add("POST", "https", "h2.test:8443", "/up", "content-length: 5\ncontent-type: text/plain", "hello", "")
	f.Add("POST", "http", "", "/t", "host: h.test\ntrailer: x-sum\nte: trailers", "body", "x-sum: 1")
	f.Add("OPTIONS", "https", "h2.test", "*", "", "", "")
	f.Add("GET", "https", "h2.test", "/%zz", "x-a: \t v ", "", "")
	f.Add("GET", "https", "h2.test", "//x/../y", "X-Up: 1", "", "")
	f.Add("CONNECT", "", "up.test:443", "", "", "", "")
	f.Fuzz(func(t *testing.T, method, scheme, authority, path, header, body, trailer string) {
		var fields []string
		for _, p := range [][2]string{{":method", method}, {":scheme", scheme}, {":authority", authority}, {":path", path}} {
			if p[1] != "" {
				fields = append(fields, p[0], p[1])
			}
		}
		for _, line := range strings.Split(header, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields = append(fields, k, strings.TrimPrefix(v, " "))
			}
		}
		var trailers []string
		if trailer != "" {
			for _, line := range strings.Split(trailer, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok {
					trailers = append(trailers, k, strings.TrimPrefix(v, " "))
				}
			}
		}
		saw := make(chan string, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { saw <- seen(r) })
		start := time.Now()
		ours := exchange(t, (&Server{Handler: h}).ServeConn, saw, fields, body, trailers)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("our server took %v to answer or refuse", d)
		}
		goSrv := func(ctx context.Context, c net.Conn) error {
			(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Context: ctx, Handler: h})
			return nil
		}
		theirs := exchange(t, goSrv, saw, fields, body, trailers)
		if ours != "" && theirs != "" && ours != theirs {
			t.Fatalf("handlers saw different requests\nours:   %s\nGo's:   %s", ours, theirs)
		}
	})
}

// FuzzFrames feeds arbitrary bytes after the client preface and SETTINGS:
// the server never panics, answers or ends the connection, and ServeConn
// returns once the client is gone.
func FuzzFrames(f *testing.F) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	var hb bytes.Buffer
	he := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/"}, {":authority", "a"}} {
		he.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, []byte("body"))
	f.Add(bytes.Clone(buf.Bytes()))
	buf.Reset()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes()[:3]})
	fr.WriteContinuation(1, true, hb.Bytes()[3:])
	fr.WriteWindowUpdate(0, 100)
	fr.WritePing(false, [8]byte{})
	fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(bytes.Clone(buf.Bytes()))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "ok")
			w.Header().Set("X-T", "1")
		})
		c := dialServe(t, (&Server{Handler: h}).ServeConn)
		c.nc.Write(data)
		c.nc.(*net.TCPConn).CloseWrite()
		// Read until the server ends the connection (it must: the client
		// half-closed, so its read loop sees EOF).
		for {
			_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.fr.ReadFrame(); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("the server neither answered nor closed")
				}
				break
			}
		}
	})
}
