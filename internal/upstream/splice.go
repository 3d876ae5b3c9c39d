package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// SpliceTo hands the rest of a body of known length to w, a function that
// writes prefix, then n bytes read from src, to the client, and reports ok
// false, having done nothing, when it cannot take them that way
// (internal/h1's response.ReadFromConn, which splices socket to socket on
// plain TCP): the bytes already buffered go as prefix, the rest straight
// from the connection's socket, so that w can move them in the kernel. It reports ok false, having done
// nothing, for another body (chunked, until close), a connection that is not
// plain TCP, a body already ended or being read, or when w declines; the
// caller then reads the body as usual. Otherwise the body is done when it
// returns, the connection kept or closed as at the end of a Read. A failure
// is reported as rerr when it is the upstream's (the body cut short, the
// request's context ended) and werr when it is the client's; a failure the
// kernel does not tell apart (a reset) counts as the upstream's.
func (b *respBody) SpliceTo(w func(prefix []byte, src net.Conn, n int64) (int64, bool, error)) (n int64, ok bool, rerr, werr error) {
	b.mu.Lock()
	tc, isTCP := b.x.pc.nc.(*net.TCPConn)
	if b.done || b.reading || b.mode != modeLength || !isTCP || b.remaining <= 0 {
		b.mu.Unlock()
		return 0, false, nil, nil
	}
	b.reading = true
	b.mu.Unlock()

	br := b.x.pc.br
	k := min(int64(br.Buffered()), b.remaining)
	prefix, _ := br.Peek(int(k))
	n, ok, err := w(prefix, tc, b.remaining-k)
	if ok {
		_, _ = br.Discard(int(min(n, k)))
		b.remaining -= n
		if err == nil && b.remaining > 0 {
			rerr = io.ErrUnexpectedEOF // the upstream closed before the end
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	if b.done { // closed meanwhile: the connection was closed under us
		b.release(false)
		return n, true, b.err, nil
	}
	if !ok {
		return 0, false, nil, nil
	}
	if err != nil {
		rerr, werr = classify(err)
		if cerr := b.resp.Request.Context().Err(); cerr != nil {
			rerr, werr = cerr, nil
		}
	}
	switch {
	case rerr != nil:
		b.done, b.err = true, rerr
		b.release(false)
	case werr != nil:
		b.done, b.err = true, werr
		b.release(false)
	default:
		b.done, b.err = true, io.EOF
		b.release(true)
	}
	return n, true, rerr, werr
}

// classify tells whether a failure of a socket-to-socket copy was the
// writing side's: a broken pipe (the client went away), or a write
// deadline (the upstream's read has none while a body is read, but for the
// context's end, which the caller looks at).
func classify(err error) (rerr, werr error) {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, err
	}
	return err, nil
}
