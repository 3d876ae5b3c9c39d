package forward

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRequestBodyTimeout: a client that stops sending its request body for
// longer than request_body_timeout gets 408, the connection is closed, the
// access log and the operational log say why, and the origin never answers
// for it; a client sending the same body at once gets through. On bc21481
// there was no such setting and the door waited for the body as long as the
// client liked.
func TestRequestBodyTimeout(t *testing.T) {
	o := newRecordingOrigin(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := &Config{RequestBodyTimeout: 300 * time.Millisecond}
	tp := startProxy(t, Options{Config: cfg, Logger: logger})
	head := "POST " + o.URL + "/upload HTTP/1.1\r\nHost: " + o.Listener.Addr().String() + "\r\nContent-Length: 100\r\n\r\n"

	resp, _, _ := tp.rawRequest(t, head+strings.Repeat("a", 100))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("a prompt body: %d %q", resp.StatusCode, b)
	}
	if e := tp.log.next(t); e.Status != http.StatusOK || e.BytesIn != 100 {
		t.Fatalf("a prompt body's log entry: %+v", e)
	}

	start := time.Now()
	resp, c, br := tp.rawRequest(t, head+strings.Repeat("a", 10)) // then nothing: the read deadline is the test's 20s
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "too slowly") {
		t.Fatalf("a stalled body: %d %q", resp.StatusCode, b)
	}
	if !resp.Close {
		t.Errorf("the 408 does not close the connection: %v", resp.Header)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("the connection stayed open after the 408")
	}
	_ = c
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the 408 took %v", d)
	}
	e := tp.log.next(t)
	if e.Status != http.StatusRequestTimeout || !strings.Contains(e.Error, "request_body_timeout") {
		t.Fatalf("log entry: %+v", e)
	}
	if !strings.Contains(logs.String(), "request body too slow") {
		t.Errorf("no operational log line: %s", logs.String())
	}
}

// TestMalformedChunkIs400: a chunked request body with a malformed chunk line
// (a CR inside the extension, an over-long extension, a bad size) is the
// client's fault: 400, not the 502 bc21481 answered.
func TestMalformedChunkIs400(t *testing.T) {
	o := newRecordingOrigin(t)
	tp := startProxy(t, Options{})
	head := "POST " + o.URL + "/upload HTTP/1.1\r\nHost: " + o.Listener.Addr().String() + "\r\nTransfer-Encoding: chunked\r\n\r\n"
	for name, body := range map[string]string{
		"CR in extension":     "5;ext=a\rb\r\nhello\r\n0\r\n\r\n",
		"over-long extension": "5;ext=" + strings.Repeat("x", 5000) + "\r\nhello\r\n0\r\n\r\n",
		"bare LF":             "5;ext=1\nhello\r\n0\r\n\r\n",
		"bad size":            "5z;ext=1\r\nhello\r\n0\r\n\r\n",
	} {
		resp, _, _ := tp.rawRequest(t, head+body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("malformed")) {
			t.Errorf("%s: %d %q", name, resp.StatusCode, b)
			continue
		}
		if e := tp.log.next(t); e.Status != http.StatusBadRequest || !strings.HasPrefix(e.Error, "request body: ") {
			t.Errorf("%s: log entry %+v", name, e)
		}
	}
}

// TestRequestBodyTimeoutSetting: the default is 60s and a negative value is
// refused, naming the field.
func TestRequestBodyTimeoutSetting(t *testing.T) {
	if d := (*Config)(nil).WithDefaults().RequestBodyTimeout; d != time.Minute {
		t.Fatalf("default %v", d)
	}
	errs := (&Config{RequestBodyTimeout: -time.Second}).Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "request_body_timeout") {
		t.Fatalf("negative: %v", errs)
	}
}
