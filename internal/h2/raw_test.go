package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawClient speaks frames to a Server over a loopback TCP connection: the
// conformance tests write frame sequences and assert the frames that come
// back.
type rawClient struct {
	t     *testing.T
	nc    net.Conn
	fr    *http2.Framer
	enc   *hpack.Encoder
	ebuf  bytes.Buffer
	dec   *hpack.Decoder
	done  chan error
	peer  []http2.Setting // the server's SETTINGS
	first bool
}

// dialRaw starts srv on a loopback connection, exchanges prefaces and
// SETTINGS (the client sends settings, none when nil) and returns the
// client side.
func dialRaw(t *testing.T, srv *Server, settings ...http2.Setting) *rawClient {
	t.Helper()
	if os.Getenv("H2_CONFORMANCE_AGAINST_GO") == "1" {
		// The old serving path, to show which tests it fails.
		return dialServe(t, func(ctx context.Context, sc net.Conn) error {
			gs := &http2.Server{MaxConcurrentStreams: srv.MaxConcurrentStreams, IdleTimeout: srv.IdleTimeout}
			gs.ServeConn(sc, &http2.ServeConnOpts{Context: ctx, Handler: srv.Handler})
			return nil
		}, settings...)
	}
	return dialServe(t, srv.ServeConn, settings...)
}

// dialServe is dialRaw with serve serving the server side.
func dialServe(t *testing.T, serve func(context.Context, net.Conn) error, settings ...http2.Setting) *rawClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := &rawClient{t: t, done: make(chan error, 1)}
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			c.done <- err
			return
		}
		c.done <- serve(ctx, sc)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	t.Cleanup(func() {
		nc.Close()
		cancel()
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			t.Error("ServeConn did not return after the client closed")
		}
	})
	c.fr = http2.NewFramer(nc, nc)
	c.fr.AllowIllegalWrites = true
	c.fr.SetMaxReadFrameSize(1 << 24)
	c.enc = hpack.NewEncoder(&c.ebuf)
	c.dec = hpack.NewDecoder(65536, nil)
	if _, err := io.WriteString(nc, clientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	sf := c.want(http2.FrameSettings).(*http2.SettingsFrame)
	_ = sf.ForeachSetting(func(s http2.Setting) error { c.peer = append(c.peer, s); return nil })
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after SETTINGS: %v, want the connection's WINDOW_UPDATE", err)
		}
		if f.Header().Type == http2.FrameWindowUpdate && f.Header().StreamID == 0 {
			break
		}
		if sf, ok := f.(*http2.SettingsFrame); !ok || !sf.IsAck() {
			t.Fatalf("after SETTINGS: %v, want the connection's WINDOW_UPDATE", f)
		}
	}
	if err := c.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return c
}

// next reads the next frame, skipping the server's SETTINGS acks and
// connection WINDOW_UPDATEs; nil at the end of the connection.
func (c *rawClient) next() http2.Frame {
	c.t.Helper()
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		f, err := c.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return nil
			}
			c.t.Fatalf("reading a frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				continue
			}
		}
		return f
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// want reads the next frame and fails unless it has type ft.
func (c *rawClient) want(ft http2.FrameType) http2.Frame {
	c.t.Helper()
	f := c.next()
	if f == nil {
		c.t.Fatalf("connection ended, want %v", ft)
	}
	if f.Header().Type != ft {
		c.t.Fatalf("got %v, want %v", describe(f), ft)
	}
	return f
}

func describe(f http2.Frame) string {
	switch f := f.(type) {
	case *http2.GoAwayFrame:
		return "GOAWAY " + f.ErrCode.String() + " " + string(f.DebugData())
	case *http2.RSTStreamFrame:
		return "RST_STREAM " + f.ErrCode.String()
	}
	return f.Header().String()
}

// wantRST reads frames until RST_STREAM on id and checks its code.
func (c *rawClient) wantRST(id uint32, code http2.ErrCode) {
	c.t.Helper()
	f := c.want(http2.FrameRSTStream).(*http2.RSTStreamFrame)
	if f.StreamID != id || f.ErrCode != code {
		c.t.Fatalf("RST_STREAM %d %v, want %d %v", f.StreamID, f.ErrCode, id, code)
	}
}

// wantGoAway reads frames until GOAWAY and checks its code; then the
// connection must end.
func (c *rawClient) wantGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	c.t.Helper()
	for {
		f := c.next()
		if f == nil {
			c.t.Fatalf("connection ended without GOAWAY %v", code)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != code {
				c.t.Fatalf("GOAWAY %v, want %v", g.ErrCode, code)
			}
			return g
		}
	}
}

// wantClosed reads until the connection ends.
func (c *rawClient) wantClosed() {
	c.t.Helper()
	for c.next() != nil {
	}
}

// block encodes fields (name, value pairs).
func (c *rawClient) block(fields ...string) []byte {
	c.ebuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(c.ebuf.Bytes())
}

// headers sends one HEADERS frame with fields.
func (c *rawClient) headers(id uint32, end bool, fields ...string) {
	c.t.Helper()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(fields...),
		EndStream: end, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// get sends a GET for path on id, with extra fields.
func (c *rawClient) get(id uint32, path string, extra ...string) {
	c.t.Helper()
	c.headers(id, true, append([]string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", path}, extra...)...)
}

// response reads one whole answer on id: status, header fields, body and
// trailer fields (other streams' frames fail the test).
type response struct {
	status   string
	fields   []hpack.HeaderField
	body     []byte
	trailers []hpack.HeaderField
}

func (c *rawClient) decode(block []byte) []hpack.HeaderField {
	c.t.Helper()
	fs, err := c.dec.DecodeFull(block)
	if err != nil {
		c.t.Fatal(err)
	}
	return fs
}

func (c *rawClient) response(id uint32) response {
	c.t.Helper()
	var r response
	for {
		f := c.next()
		if f == nil {
			c.t.Fatalf("connection ended during the answer on %d", id)
		}
		if f.Header().StreamID != id {
			c.t.Fatalf("frame %v on another stream while reading %d", describe(f), id)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			block := f.HeaderBlockFragment()
			for !f.HeadersEnded() {
				cf := c.want(http2.FrameContinuation).(*http2.ContinuationFrame)
				block = append(bytes.Clone(block), cf.HeaderBlockFragment()...)
				if cf.HeadersEnded() {
					break
				}
			}
			fs := c.decode(block)
			if r.status == "" {
				for _, hf := range fs {
					if hf.Name == ":status" {
						r.status = hf.Value
					} else {
						r.fields = append(r.fields, hf)
					}
				}
				if r.status[0] == '1' {
					r = response{}
					continue
				}
			} else {
				r.trailers = fs
			}
			if f.StreamEnded() {
				return r
			}
		case *http2.DataFrame:
			r.body = append(r.body, f.Data()...)
			if f.StreamEnded() {
				return r
			}
		case *http2.RSTStreamFrame:
			c.t.Fatalf("RST_STREAM %v while reading the answer on %d", f.ErrCode, id)
		default:
			c.t.Fatalf("unexpected %v", describe(f))
		}
	}
}

func (r response) get(name string) string {
	for _, f := range r.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}
