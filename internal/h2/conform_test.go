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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// okHandler answers 200 "ok" and counts the requests it saw.
func okHandler(n *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n != nil {
			n.Add(1)
		}
		io.WriteString(w, "ok")
	})
}

// stillServes checks that the connection answers a fresh request on id.
func stillServes(c *rawClient, id uint32) {
	c.t.Helper()
	c.get(id, "/after")
	if r := c.response(id); r.status != "200" || string(r.body) != "ok" {
		c.t.Fatalf("after the stream error: %s %q", r.status, r.body)
	}
}

func setting(id http2.SettingID, val uint32) http2.Setting { return http2.Setting{ID: id, Val: val} }

func TestServerSettings(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil), MaxConcurrentStreams: 7, MaxHeaderListSize: 5000})
	want := map[http2.SettingID]uint32{http2.SettingMaxConcurrentStreams: 7, http2.SettingInitialWindowSize: defaultStreamWindow,
		http2.SettingMaxHeaderListSize: 5000}
	for _, s := range c.peer {
		if want[s.ID] != s.Val {
			t.Errorf("setting %v = %d, want %d", s.ID, s.Val, want[s.ID])
		}
		delete(want, s.ID)
	}
	if len(want) > 0 {
		t.Errorf("settings missing: %v", want)
	}
	// Our SETTINGS is acknowledged.
	if err := c.fr.WriteSettings(setting(http2.SettingMaxFrameSize, 20000)); err != nil {
		t.Fatal(err)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			break
		}
	}
	stillServes(c, 1)
}

func TestPing(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil)})
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := c.fr.WritePing(false, data); err != nil {
		t.Fatal(err)
	}
	p := c.want(http2.FramePing).(*http2.PingFrame)
	if !p.IsAck() || p.Data != data {
		t.Fatalf("PING answer %v %v", p.IsAck(), p.Data)
	}
}

// A HEADERS frame larger than SETTINGS_MAX_FRAME_SIZE (16384, the default
// we keep) is a connection error FRAME_SIZE_ERROR (RFC 9113 §4.2). Go's
// server advertises 1 MiB and takes it.
func TestRefuseHeadersLargerThanMaxFrameSize(t *testing.T) {
	var n atomic.Int32
	c := dialRaw(t, &Server{Handler: okHandler(&n)})
	big := strings.Repeat("a", 30000) // 18,750 bytes with Huffman coding
	c.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/", "x-big", big)
	c.wantGoAway(http2.ErrCodeFrameSize)
	c.wantClosed()
	if n.Load() != 0 {
		t.Error("the handler ran")
	}
}

// Several SETTINGS_INITIAL_WINDOW_SIZE values in one SETTINGS frame:
// connection error PROTOCOL_ERROR, as HAProxy does.
func TestRefuseSeveralInitialWindowSizes(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil)})
	if err := c.fr.WriteSettings(setting(http2.SettingInitialWindowSize, 1000), setting(http2.SettingInitialWindowSize, 70000)); err != nil {
		t.Fatal(err)
	}
	c.wantGoAway(http2.ErrCodeProtocol)
	c.wantClosed()
}

// Malformed requests (RFC 9113 §8.1.1, §8.2, §8.3) get RST_STREAM
// PROTOCOL_ERROR, never reach the handler, and leave the connection
// serving.
func TestRefuseMalformedRequests(t *testing.T) {
	base := []string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	cases := map[string][]string{
		"connection":             with("connection", "close"),
		"keep-alive":             with("keep-alive", "timeout=5"),
		"proxy-connection":       with("proxy-connection", "keep-alive"),
		"transfer-encoding":      with("transfer-encoding", "chunked"),
		"upgrade":                with("upgrade", "websocket"),
		"te gzip":                with("te", "gzip"),
		"te trailers, gzip":      with("te", "trailers, gzip"),
		"missing :method":        {":scheme", "https", ":authority", "h2.test", ":path", "/"},
		"missing :path":          {":method", "GET", ":scheme", "https", ":authority", "h2.test"},
		"missing :scheme":        {":method", "GET", ":authority", "h2.test", ":path", "/"},
		"empty :path":            {":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", ""},
		"relative :path":         {":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "x"},
		"duplicate :path":        with(":path", "/again"),
		"duplicate :method":      {":method", "GET", ":method", "POST", ":scheme", "https", ":path", "/"},
		"unknown pseudo":         with(":foo", "bar"),
		":status in a request":   with(":status", "200"),
		"pseudo after regular":   {":method", "GET", ":scheme", "https", "accept", "*/*", ":path", "/"},
		"upper-case name":        with("X-Upper", "1"),
		"space in name":          with("x y", "1"),
		"newline in value":       with("x-v", "a\nb"),
		"host differs":           with("host", "other.test"),
		"two hosts":              {":method", "GET", ":scheme", "https", ":path", "/", "host", "a.test", "host", "a.test"},
		"bad content-length":     with("content-length", "1x"),
		"two content-lengths":    with("content-length", "1", "content-length", "2"),
		"content-length no body": with("content-length", "5"),
		"extended CONNECT":       {":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "h2.test", ":path", "/"},
		"CONNECT with :path":     {":method", "CONNECT", ":authority", "h2.test:443", ":path", "/"},
		"CONNECT no authority":   {":method", "CONNECT"},
		"* outside OPTIONS":      {":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "*"},
	}
	for name, fields := range cases {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			c := dialRaw(t, &Server{Handler: okHandler(&n)})
			c.headers(1, true, fields...)
			c.wantRST(1, http2.ErrCodeProtocol)
			stillServes(c, 3)
			if n.Load() != 1 {
				t.Errorf("handler ran %d times, want 1 (the request after)", n.Load())
			}
		})
	}
}

// Well-formed edge cases are served.
func TestAcceptedRequests(t *testing.T) {
	var got atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(fmt.Sprintf("%s %s %s %q %q", r.Method, r.Host, r.RequestURI, r.Header.Get("Cookie"), r.Header.Get("Te")))
	})
	c := dialRaw(t, &Server{Handler: h})
	cases := []struct {
		fields []string
		want   string
	}{
		{[]string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/a", "te", "trailers"}, `GET h2.test /a "" "trailers"`},
		{[]string{":method", "GET", ":scheme", "https", ":path", "/b", "host", "h.test"}, `GET h.test /b "" ""`},
		{[]string{":method", "GET", ":scheme", "https", ":authority", "H2.test", ":path", "/c", "host", "h2.TEST"}, `GET H2.test /c "" ""`},
		{[]string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/d", "cookie", "a=1", "cookie", "b=2"}, `GET h2.test /d "a=1; b=2" ""`},
		{[]string{":method", "OPTIONS", ":scheme", "https", ":authority", "h2.test", ":path", "*"}, `OPTIONS h2.test * "" ""`},
		{[]string{":method", "CONNECT", ":authority", "up.test:443"}, `CONNECT up.test:443 up.test:443 "" ""`},
	}
	for i, tc := range cases {
		id := uint32(2*i + 1)
		c.headers(id, true, tc.fields...)
		if r := c.response(id); r.status != "200" {
			t.Fatalf("%v: status %s", tc.fields, r.status)
		}
		if g := got.Load(); g != tc.want {
			t.Errorf("%v: handler saw %v, want %s", tc.fields, g, tc.want)
		}
	}
}

// The DATA frames of a request must add up to its content-length
// (RFC 9113 §8.1.1): more or fewer is RST_STREAM PROTOCOL_ERROR, and the
// handler's body read fails.
func TestRefuseContentLengthMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []string
	}{{"fewer", []string{"12345"}}, {"more", []string{"1234567890", "12"}}} {
		t.Run(tc.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/after" {
					io.WriteString(w, "ok")
					return
				}
				_, err := io.ReadAll(r.Body)
				readErr <- err
			})
			c := dialRaw(t, &Server{Handler: h})
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/", "content-length", "10")
			for i, d := range tc.data {
				if err := c.fr.WriteData(1, i == len(tc.data)-1, []byte(d)); err != nil {
					t.Fatal(err)
				}
			}
			c.wantRST(1, http2.ErrCodeProtocol)
			select {
			case err := <-readErr:
				if err == nil {
					t.Error("the handler read the body without an error")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("handler still reading")
			}
			stillServes(c, 3)
		})
	}
}

// Request trailers reach the handler once the body is read.
func TestRequestTrailers(t *testing.T) {
	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %v %q", b, err, r.Trailer.Get("X-Sum"))
	})
	c := dialRaw(t, &Server{Handler: h})
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/", "trailer", "x-sum")
	_ = c.fr.WriteData(1, false, []byte("body"))
	c.headers(1, true, "x-sum", "42")
	if r := c.response(1); r.status != "200" {
		t.Fatal(r.status)
	}
	if g := <-got; g != `body <nil> "42"` {
		t.Fatalf("handler saw %s", g)
	}
	// Trailers without END_STREAM, or with pseudo-headers: malformed.
	c.headers(3, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
	c.headers(3, false, "x-sum", "1")
	c.wantRST(3, http2.ErrCodeProtocol)
}

// Response trailers: HEADERS, DATA, HEADERS with END_STREAM.
func TestResponseTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Late", "l")
	})
	c := dialRaw(t, &Server{Handler: h})
	c.get(1, "/")
	r := c.response(1)
	if string(r.body) != "body" || r.get("x-declared") != "" || r.get("content-length") != "" {
		t.Fatalf("answer %+v", r)
	}
	var tr []string
	for _, f := range r.trailers {
		tr = append(tr, f.Name+": "+f.Value)
	}
	if strings.Join(tr, ",") != "x-declared: d,x-late: l" {
		t.Fatalf("trailers %s", tr)
	}
}

// The server never sends more than the client's windows allow, and sends
// the rest when they open.
func TestSendFlowControl(t *testing.T) {
	body := bytes.Repeat([]byte("w"), 1000)
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })},
		setting(http2.SettingInitialWindowSize, 100))
	c.get(1, "/")
	c.want(http2.FrameHeaders)
	d := c.want(http2.FrameData).(*http2.DataFrame)
	if len(d.Data()) != 100 || d.StreamEnded() {
		t.Fatalf("first DATA %d bytes", len(d.Data()))
	}
	// Nothing more until the window opens: a PING is answered first.
	_ = c.fr.WritePing(false, [8]byte{9})
	if p := c.want(http2.FramePing).(*http2.PingFrame); p.Data[0] != 9 {
		t.Fatal("wrong PING")
	}
	_ = c.fr.WriteWindowUpdate(1, 900)
	got := 100
	for got < 1000 {
		d := c.want(http2.FrameData).(*http2.DataFrame)
		got += len(d.Data())
		if got == 1000 && !d.StreamEnded() {
			t.Fatal("no END_STREAM")
		}
	}
	if got != 1000 {
		t.Fatalf("%d bytes", got)
	}
	// Frames never exceed the peer's SETTINGS_MAX_FRAME_SIZE (16384).
	big := bytes.Repeat([]byte("b"), 40000)
	c2 := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) })})
	_ = c2.fr.WriteWindowUpdate(0, 1<<20)
	c2.get(1, "/")
	c2.want(http2.FrameHeaders)
	got = 0
	for got < 40000 {
		d := c2.want(http2.FrameData).(*http2.DataFrame)
		if len(d.Data()) > 16384 {
			t.Fatalf("DATA of %d bytes", len(d.Data()))
		}
		got += len(d.Data())
	}
}

// A client that sends beyond the connection window: FLOW_CONTROL_ERROR.
func TestRefuseDataBeyondWindow(t *testing.T) {
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })})
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
	chunk := make([]byte, 16384)
	for range defaultConnWindow/len(chunk) + 1 {
		if err := c.fr.WriteData(1, false, chunk); err != nil {
			break
		}
	}
	c.wantGoAway(http2.ErrCodeFlowControl)
}

// WINDOW_UPDATEs are batched: a 700 KiB body read by the handler costs
// one for the stream and one for the connection, not one per DATA frame.
func TestWindowUpdatesBatched(t *testing.T) {
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})})
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
	chunk := make([]byte, 16384)
	for range 700 * 1024 / len(chunk) {
		_ = c.fr.WriteData(1, false, chunk)
	}
	_ = c.fr.WriteData(1, true, nil)
	updates := 0
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.(*http2.WindowUpdateFrame); ok {
			updates++
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			if string(d.Data()) != fmt.Sprint(700*1024/len(chunk)*len(chunk)) {
				t.Fatalf("handler read %s", d.Data())
			}
			break
		}
	}
	// One for the connection at 512 KiB; one for the stream unless the
	// whole body had arrived by then.
	if updates < 1 || updates > 2 {
		t.Fatalf("%d WINDOW_UPDATEs for 688 KiB in 43 DATA frames", updates)
	}
}

// RST_STREAM from the client cancels the handler's context.
func TestClientReset(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/after" {
			io.WriteString(w, "ok")
			return
		}
		close(started)
		<-r.Context().Done()
		close(cancelled)
	})})
	c.get(1, "/")
	<-started
	_ = c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	select {
	case <-cancelled:
	case <-time.After(20 * time.Second):
		t.Fatal("handler's context not cancelled")
	}
	stillServes(c, 3)
}

// Rapid reset (CVE-2023-44487): streams opened and reset at once end the
// connection with ENHANCE_YOUR_CALM once the budget is spent.
func TestRapidReset(t *testing.T) {
	var n atomic.Int32
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		<-r.Context().Done()
	}), MaxGlitches: 50})
	go func() {
		for id := uint32(1); id < 2000; id += 2 {
			if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true,
				BlockFragment: c.block(":method", "GET", ":scheme", "https", ":path", "/")}) != nil {
				return
			}
			if c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	c.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	c.wantClosed()
	if n.Load() > 200 {
		t.Errorf("%d handlers started", n.Load())
	}
}

// CONTINUATION floods: a header block far beyond the header list limit
// ends the connection before it is all read, and so do endless empty
// CONTINUATION frames.
func TestContinuationFlood(t *testing.T) {
	t.Run("large", func(t *testing.T) {
		c := dialRaw(t, &Server{Handler: okHandler(nil)})
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(":method", "GET"), EndHeaders: false})
		frag := c.block("x-a", strings.Repeat("a", 16000))
		go func() {
			for range 1000 {
				if c.fr.WriteContinuation(1, false, frag) != nil {
					return
				}
			}
		}()
		c.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	})
	t.Run("empty", func(t *testing.T) {
		c := dialRaw(t, &Server{Handler: okHandler(nil), MaxGlitches: 100})
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(":method", "GET"), EndHeaders: false})
		go func() {
			for range 100000 {
				if c.fr.WriteContinuation(1, false, nil) != nil {
					return
				}
			}
		}()
		c.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	})
}

// SETTINGS, PING and empty DATA floods spend the glitch budget.
func TestFloods(t *testing.T) {
	for name, send := range map[string]func(c *rawClient) error{
		"settings":   func(c *rawClient) error { return c.fr.WriteSettings() },
		"ping":       func(c *rawClient) error { return c.fr.WritePing(false, [8]byte{}) },
		"empty data": func(c *rawClient) error { return c.fr.WriteData(1, false, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
				MaxGlitches: 100})
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			go func() {
				for range 100000 {
					if send(c) != nil {
						return
					}
				}
			}()
			c.wantGoAway(http2.ErrCodeEnhanceYourCalm)
		})
	}
}

// Streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused.
func TestMaxConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var started atomic.Int32
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release
	}), MaxConcurrentStreams: 3})
	for id := uint32(1); id <= 7; id += 2 {
		c.get(id, "/")
	}
	c.wantRST(7, http2.ErrCodeRefusedStream)
	if !eventually(t, 20*time.Second, func() bool { return started.Load() == 3 }) {
		t.Fatalf("%d handlers", started.Load())
	}
}

// A header list above MaxHeaderListSize gets 431.
func TestHeaderListTooLarge(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil), MaxHeaderListSize: 1000})
	c.get(1, "/", "x-a", strings.Repeat("a", 600), "x-b", strings.Repeat("b", 600))
	if r := c.response(1); r.status != "431" {
		t.Fatalf("status %s", r.status)
	}
	stillServes(c, 3)
}

// HEADERS on an even stream, PUSH_PROMISE, DATA on an idle stream and
// WINDOW_UPDATE on an idle stream: connection error PROTOCOL_ERROR.
func TestRefuseStreamStateViolations(t *testing.T) {
	for name, send := range map[string]func(c *rawClient){
		"even stream": func(c *rawClient) { c.get(2, "/") },
		"data idle":   func(c *rawClient) { _ = c.fr.WriteData(5, true, []byte("x")) },
		"window idle": func(c *rawClient) { _ = c.fr.WriteWindowUpdate(5, 10) },
		"rst idle":    func(c *rawClient) { _ = c.fr.WriteRSTStream(5, http2.ErrCodeCancel) },
		"push promise": func(c *rawClient) {
			_ = c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true})
		},
		"lower stream id":    func(c *rawClient) { c.get(3, "/"); c.response(3); c.get(1, "/") },
		"stray continuation": func(c *rawClient) { _ = c.fr.WriteContinuation(1, true, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, &Server{Handler: okHandler(nil)})
			send(c)
			g := c.next()
			for g != nil && g.Header().Type != http2.FrameGoAway {
				g = c.next()
			}
			if g == nil {
				t.Fatal("no GOAWAY")
			}
			if code := g.(*http2.GoAwayFrame).ErrCode; code != http2.ErrCodeProtocol && code != http2.ErrCodeStreamClosed {
				t.Fatalf("GOAWAY %v", code)
			}
		})
	}
}

// DATA after END_STREAM: RST_STREAM STREAM_CLOSED.
func TestDataAfterEndStream(t *testing.T) {
	release := make(chan struct{})
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })})
	c.get(1, "/")
	_ = c.fr.WriteData(1, false, []byte("late"))
	c.wantRST(1, http2.ErrCodeStreamClosed)
	close(release)
}

// Priorities are ignored (RFC 9113 §5.3.2), but a stream may not depend
// on itself.
func TestPriorityIgnored(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil)})
	_ = c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 200})
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.block(":method", "GET", ":scheme", "https", ":path", "/"),
		EndStream: true, EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 1, Weight: 10, Exclusive: true}})
	if r := c.response(3); r.status != "200" {
		t.Fatal(r.status)
	}
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: c.block(":method", "GET", ":scheme", "https", ":path", "/"),
		EndStream: true, EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 5, Weight: 10}})
	c.wantRST(5, http2.ErrCodeProtocol)
}

// Shutdown: GOAWAY NO_ERROR naming the last stream, streams in progress
// finish, later streams are not served, then the connection closes.
func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int32
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		<-release
		io.WriteString(w, "done")
	})}
	c := dialRaw(t, srv)
	c.get(1, "/")
	if !eventually(t, 20*time.Second, func() bool { return n.Load() == 1 }) {
		t.Fatal("handler did not start")
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	g := c.wantGoAway(http2.ErrCodeNo)
	if g.LastStreamID != 1 {
		t.Fatalf("GOAWAY last stream %d", g.LastStreamID)
	}
	c.get(3, "/") // after GOAWAY: not served
	close(release)
	if r := c.response(1); string(r.body) != "done" {
		t.Fatalf("answer %q", r.body)
	}
	c.wantClosed()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if n.Load() != 1 {
		t.Errorf("%d handlers ran", n.Load())
	}
}

// IdleTimeout: a connection without streams gets GOAWAY and is closed.
func TestIdleTimeout(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil), IdleTimeout: 200 * time.Millisecond})
	stillServes(c, 1)
	c.wantGoAway(http2.ErrCodeNo)
	c.wantClosed()
}

// A handler that answers before reading the body: the answer, then
// RST_STREAM NO_ERROR (RFC 9113 §8.1); the connection goes on.
func TestEarlyAnswer(t *testing.T) {
	c := dialRaw(t, &Server{Handler: okHandler(nil)})
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
	if r := c.response(1); string(r.body) != "ok" {
		t.Fatal(string(r.body))
	}
	c.wantRST(1, http2.ErrCodeNo)
	_ = c.fr.WriteData(1, true, []byte("late body")) // ignored: we reset it
	stillServes(c, 3)
}

// 1xx answers (103 Early Hints) go out at once, before the final answer.
func TestEarlyHints(t *testing.T) {
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(103)
		w.WriteHeader(204)
	})})
	c.get(1, "/")
	h := c.want(http2.FrameHeaders).(*http2.HeadersFrame)
	fs := c.decode(h.HeaderBlockFragment())
	if fs[0].Value != "103" || h.StreamEnded() {
		t.Fatalf("first answer %v", fs)
	}
	h = c.want(http2.FrameHeaders).(*http2.HeadersFrame)
	if fs := c.decode(h.HeaderBlockFragment()); fs[0].Value != "204" || !h.StreamEnded() {
		t.Fatalf("final answer %v", fs)
	}
}

// http.NewResponseController works on the stream: Flush sends the header
// at once, EnableFullDuplex is accepted, a read deadline fails a body read
// that waits too long, a write deadline resets a stream the client does
// not let us write.
func TestResponseController(t *testing.T) {
	errs := make(chan error, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/flush":
			errs <- rc.EnableFullDuplex()
			w.Header().Set("X-Early", "1")
			errs <- rc.Flush()
			<-r.Context().Done()
		case "/read":
			errs <- rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := io.ReadAll(r.Body)
			errs <- err
		case "/write":
			errs <- rc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := w.Write(bytes.Repeat([]byte("w"), 100000))
			errs <- err
		}
	})
	c := dialRaw(t, &Server{Handler: h}, setting(http2.SettingInitialWindowSize, 0))
	c.get(1, "/flush")
	hf := c.want(http2.FrameHeaders).(*http2.HeadersFrame)
	if fs := c.decode(hf.HeaderBlockFragment()); hf.StreamEnded() || fmt.Sprint(fs) == "" {
		t.Fatal("flushed header ended the stream")
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_ = c.fr.WriteRSTStream(1, http2.ErrCodeCancel)

	c.headers(3, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/read")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("body read after the read deadline: %v", err)
	}
	c.response(3)

	c.get(5, "/write")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for {
		f := c.next()
		if f == nil {
			t.Fatal("connection ended")
		}
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 5 {
			if r.ErrCode != http2.ErrCodeInternal {
				t.Fatalf("RST_STREAM %v", r.ErrCode)
			}
			break
		}
	}
	if err := <-errs; err == nil {
		t.Fatal("write past the write deadline succeeded")
	}
}

// When ServeConn's context ends (internal/h1 shutting down), the
// connection drains: GOAWAY NO_ERROR, the stream in flight finishes with
// its context alive, then the connection closes.
func TestContextEndDrains(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var handlerCtxErr atomic.Value
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		handlerCtxErr.Store(fmt.Sprint(r.Context().Err()))
		io.WriteString(w, "finished")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	c := dialServe(t, func(_ context.Context, nc net.Conn) error { return srv.ServeConn(ctx, nc) })
	c.get(1, "/")
	<-started
	cancel()
	c.wantGoAway(http2.ErrCodeNo)
	close(release)
	if r := c.response(1); string(r.body) != "finished" {
		t.Fatalf("answer %q", r.body)
	}
	c.wantClosed()
	if v := handlerCtxErr.Load(); v != "<nil>" {
		t.Errorf("the handler's context ended during the drain: %v", v)
	}
}

// slowConn is the server's side of a connection whose writes wait while the
// test holds them (a client that does not read), until the write deadline
// the server sets, if any.
type slowConn struct {
	net.Conn
	mu       sync.Mutex
	held     chan struct{} // non-nil: writes wait for it to be closed
	deadline time.Time
	changed  chan struct{} // closed when held or deadline change
}

func newSlowConn(c net.Conn) *slowConn { return &slowConn{Conn: c, changed: make(chan struct{})} }

func (s *slowConn) changeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *slowConn) hold() {
	s.mu.Lock()
	s.held = make(chan struct{})
	s.changeLocked()
	s.mu.Unlock()
}

func (s *slowConn) resume() {
	s.mu.Lock()
	close(s.held)
	s.held = nil
	s.changeLocked()
	s.mu.Unlock()
}

func (s *slowConn) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.changeLocked()
	s.mu.Unlock()
	return s.Conn.SetWriteDeadline(t)
}

func (s *slowConn) Write(p []byte) (int, error) {
	for {
		s.mu.Lock()
		held, deadline, changed := s.held, s.deadline, s.changed
		s.mu.Unlock()
		if held == nil {
			return s.Conn.Write(p)
		}
		var expired <-chan time.Time
		if !deadline.IsZero() {
			tm := time.NewTimer(time.Until(deadline))
			defer tm.Stop()
			expired = tm.C
		}
		select {
		case <-held:
		case <-changed:
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// heldAnswer is a server whose handler, once started (closed), waits for
// release to be closed and then answers size bytes of "a".
func heldAnswer(size int) (srv *Server, started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	srv = &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = w.Write(bytes.Repeat([]byte("a"), size))
	})}
	return srv, started, release
}

// A drained connection closes once the answers of its last streams have
// left, not when their handlers return: a client slower to take the end of
// an answer than the second a closing connection gives its last writes
// still gets all of it.
func TestDrainWaitsForTheLastAnswer(t *testing.T) {
	const size = 100 << 10
	srv, started, release := heldAnswer(size)
	ctx, cancel := context.WithCancel(context.Background())
	conns := make(chan *slowConn, 1)
	c := dialServe(t, func(_ context.Context, nc net.Conn) error {
		sc := newSlowConn(nc)
		conns <- sc
		return srv.ServeConn(ctx, sc)
	}, setting(http2.SettingInitialWindowSize, 1<<20))
	_ = c.fr.WriteWindowUpdate(0, 1<<20) // the whole answer fits the windows: the handler returns at once
	sc := <-conns
	c.get(1, "/")
	<-started
	cancel()
	c.wantGoAway(http2.ErrCodeNo)
	sc.hold()
	close(release)
	time.Sleep(1500 * time.Millisecond) // the slow client, not a synchronisation
	sc.resume()
	if r := c.response(1); r.status != "200" || len(r.body) != size {
		t.Fatalf("answer %s, %d bytes of %d", r.status, len(r.body), size)
	}
	c.wantClosed()
}

// A drained connection ends without resetting a client still reading its
// last answer: the WINDOW_UPDATEs such a client sends after the server wrote
// its last bytes are read (and dropped) until the client closes. A socket
// closed with unread bytes is reset instead, and the kernel drops what it
// still held of the answer. The client's small receive buffer keeps most of
// the answer in the server's kernel when the server is done writing.
func TestDrainedConnectionLingers(t *testing.T) {
	const size = 256 << 10
	srv, started, release := heldAnswer(size)
	ctx, cancel := context.WithCancel(context.Background())
	c := dialServe(t, func(_ context.Context, nc net.Conn) error { return srv.ServeConn(ctx, nc) },
		setting(http2.SettingInitialWindowSize, 16<<20))
	if err := c.nc.(*net.TCPConn).SetReadBuffer(8192); err != nil {
		t.Fatal(err)
	}
	_ = c.fr.WriteWindowUpdate(0, 16<<20)
	c.get(1, "/")
	<-started
	cancel()
	c.wantGoAway(http2.ErrCodeNo)
	close(release)
	got := 0
	for ended := false; !ended; {
		_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes of %d: %v", got, size, err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			got += len(f.Data())
			ended = f.StreamEnded()
			if len(f.Data()) > 0 {
				_ = c.fr.WriteWindowUpdate(0, uint32(len(f.Data()))) // as a client returns window
			}
		case *http2.HeadersFrame:
			ended = f.StreamEnded()
		}
	}
	if got != size {
		t.Fatalf("answer of %d bytes, want %d", got, size)
	}
	c.wantClosed()
}

// A connection that ends cancels the context of every handler still
// running, whatever it waits on: its context, its request body, or send
// window for its answer.
func TestConnectionEndCancelsHandlers(t *testing.T) {
	var started sync.WaitGroup
	started.Add(3)
	ended := make(chan string, 3)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		switch r.URL.Path {
		case "/wait":
		case "/body":
			_, _ = io.ReadAll(r.Body)
		case "/write":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			_, _ = w.Write(bytes.Repeat([]byte("w"), 100000))
		}
		select {
		case <-r.Context().Done():
			ended <- r.URL.Path
		case <-time.After(20 * time.Second):
			ended <- r.URL.Path + ": context not cancelled"
		}
	})
	c := dialRaw(t, &Server{Handler: h}, setting(http2.SettingInitialWindowSize, 0))
	c.get(1, "/wait")
	c.headers(3, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/body")
	c.get(5, "/write")
	started.Wait()
	c.want(http2.FrameHeaders) // /write's, flushed: its handler waits for window
	c.nc.Close()
	deadline := time.After(30 * time.Second)
	for range 3 {
		select {
		case got := <-ended:
			if strings.Contains(got, "not") {
				t.Error(got)
			}
		case <-deadline:
			t.Fatal("a handler still runs 30 s after its connection ended")
		}
	}
}
