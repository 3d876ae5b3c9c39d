package tunnel

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// streamServer runs handler on an HTTP/2 TLS server and returns a CONNECT
// stream to it: the response, and the writer of the request body.
func streamServer(t *testing.T, handler func(c *StreamConn)) (*http.Response, io.WriteCloser) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := NewStreamConn(w, r, nil)
		defer c.Close()
		w.WriteHeader(http.StatusOK)
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("answering the CONNECT: %v", err)
			return
		}
		handler(c)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
	t.Cleanup(tr.CloseIdleConnections)
	pr, pw := io.Pipe()
	host := srv.Listener.Addr().String()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Scheme: "https", Host: host}, Host: host, Header: http.Header{}, Body: pr}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	return resp, pw
}

// TestStreamConnReadDeadline: a read deadline ends a Read with
// os.ErrDeadlineExceeded and leaves the stream usable: bytes the client sends
// afterwards are read once the deadline is moved (net/http's own stream read
// deadline would have ended the body for good; the tunnel sets one every round).
func TestStreamConnReadDeadline(t *testing.T) {
	got := make(chan string, 1)
	resp, pw := streamServer(t, func(c *StreamConn) {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			got <- "first read: " + errString(err)
			return
		}
		_, _ = c.Write([]byte("timed out;"))
		_ = c.SetReadDeadline(time.Time{})
		n, err := io.ReadFull(c, buf[:5])
		if err != nil {
			got <- "second read: " + err.Error()
			return
		}
		got <- string(buf[:n])
		_, _ = c.Write(buf[:n])
	})
	b := make([]byte, len("timed out;"))
	if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != "timed out;" {
		t.Fatalf("server's note: %q, %v", b, err)
	}
	if _, err := pw.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "hello" {
			t.Fatalf("after the deadline: %s", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the read after a deadline never returned")
	}
	if _, err := io.ReadFull(resp.Body, b[:5]); err != nil || string(b[:5]) != "hello" {
		t.Fatalf("echo: %q, %v", b[:5], err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestStreamConnCloseUnblocksWrite: a Write blocked because the client reads
// nothing (HTTP/2 flow control) returns once another goroutine closes the
// conn, as a tunnel's idle timeout or a shutdown does.
func TestStreamConnCloseUnblocksWrite(t *testing.T) {
	done := make(chan error, 1)
	streamServer(t, func(c *StreamConn) {
		go func() {
			// Poll until the write below is under way, then close: whether
			// it is blocked already or blocks later, it must end.
			for deadline := time.Now().Add(30 * time.Second); c.writing.Load() == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			c.Close()
		}()
		big := bytes.Repeat([]byte("x"), 16<<20) // far beyond any window
		_, err := c.Write(big)
		done <- err
	})
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("16 MiB written to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end a write blocked on flow control")
	}
}
