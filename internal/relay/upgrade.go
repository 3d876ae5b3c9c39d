package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// upgrade relays a 101 response: it checks that the request asked for the
// protocol the origin switched to, hijacks the client connection, writes the
// 101 on it and relays both ways until either side ends. Nothing is written to
// the client when it returns ErrUpgrade.
func (rl *Relay) upgrade(ctx context.Context, w http.ResponseWriter, resp *http.Response, asked string, res Result) (Result, error) {
	got := upgradeType(resp.Header)
	if asked == "" || !strings.EqualFold(asked, got) {
		closeBody(resp.Body)
		return res, fmt.Errorf("%w: the origin switched to %q, the request asked for %q", ErrUpgrade, got, asked)
	}
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		closeBody(resp.Body)
		return res, fmt.Errorf("%w: the transport gave no connection for the switched protocol", ErrUpgrade)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = back.Close()
		return res, fmt.Errorf("%w: %v", ErrUpgrade, err)
	}
	defer conn.Close()
	defer back.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	_, err = io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\n")
	if err == nil {
		err = h.Write(brw)
	}
	if err == nil {
		_, err = io.WriteString(brw, "\r\n")
	}
	if err == nil {
		err = brw.Flush()
	}
	if err != nil {
		return res, errors.Join(ErrClientGone, err)
	}
	res.Status = http.StatusSwitchingProtocols
	in, out, err := copyUpgraded(ctx, conn, brw.Reader, back)
	res.BytesIn += in
	res.BytesOut += out
	return res, err
}

// copyUpgraded relays an upgraded connection both ways: client (whose reads
// go through cr, which holds what the client sent after the request head) to
// back, and back to client, until either direction ends or ctx is done; then
// both are closed. It returns the bytes relayed each way. This is the one
// place to swap for internal/tunnel's Relay once it is on main.
func copyUpgraded(ctx context.Context, client net.Conn, cr *bufio.Reader, back io.ReadWriteCloser) (in, out int64, err error) {
	closeBoth := func() {
		_ = client.Close()
		_ = back.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	done := make(chan error, 1)
	go func() { // owned by this call, which waits for it below
		n, err := io.Copy(back, cr)
		in = n
		closeBoth()
		done <- err
	}()
	out, err = io.Copy(client, back)
	closeBoth()
	if e := <-done; err == nil {
		err = e
	}
	if isClosed(err) {
		err = nil
	}
	return in, out, err
}

// isClosed reports whether err only says that a side was closed: the normal
// end of an upgraded connection.
func isClosed(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)
}
