package forward

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// errHelloRead stops the handshake once the ClientHello has been parsed.
var errHelloRead = errors.New("forward: client hello read")

// peekHello reads the client's first bytes, up to and including a TLS ClientHello,
// without answering. It returns every byte read (to be replayed so the tunnel stays
// byte-identical) and the server name, "" when the client sent no SNI, the bytes
// are not TLS, or nothing arrived within timeout; it is as the client sent it
// (the caller makes it canonical with rules.CanonicalName). prefix holds bytes already read
// from client (they come first). The client's read deadline is cleared on return.
func peekHello(client net.Conn, prefix []byte, timeout time.Duration) (peeked []byte, sni string) {
	rec := &recordingConn{Conn: client, buf: bytes.NewBuffer(append(make([]byte, 0, 1024), prefix...)), pending: prefix}
	_ = client.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = client.SetReadDeadline(time.Time{}) }()
	var first [1]byte
	if n, _ := io.ReadFull(rec, first[:]); n == 0 || first[0] != 0x16 {
		return rec.buf.Bytes(), ""
	}
	rec.unread = first[:]
	var name string
	srv := tls.Server(rec, &tls.Config{
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			name = hi.ServerName
			return nil, errHelloRead
		},
	})
	_ = srv.Handshake()
	return rec.buf.Bytes(), name
}

// recordingConn reads from pending, then from the connection, keeping a copy of
// every byte it returns for the first time; writes are dropped (the peek must not
// answer the client). unread is served again before anything else (used once, to
// give back the first byte the caller looked at).
type recordingConn struct {
	net.Conn
	buf     *bytes.Buffer
	pending []byte
	unread  []byte
}

func (r *recordingConn) Read(p []byte) (int, error) {
	if len(r.unread) > 0 {
		n := copy(p, r.unread)
		r.unread = r.unread[n:]
		return n, nil
	}
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	n, err := r.Conn.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

func (r *recordingConn) Write(p []byte) (int, error) { return len(p), nil }
