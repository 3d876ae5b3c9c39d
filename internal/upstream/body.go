package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// Body framing modes.
const (
	modeLength  = iota + 1 // Content-Length
	modeChunked            // chunked, with trailers
	modeClose              // until the server closes
)

// Chunked reader states.
const (
	chunkSize = iota // next: a chunk-size line
	chunkData        // inside a chunk's data
	chunkCRLF        // next: the CR LF after a chunk's data
)

var errClosedBody = errors.New("upstream: read on closed response body")

// respBody is a response and its body, reading from the connection. At the
// end of the body the connection is kept for the next request (when the
// response allows it); a Close before the end keeps it only when the rest is
// already buffered, else closes it.
type respBody struct {
	resp      http.Response
	x         *exchange
	mode      int
	remaining int64 // modeLength: bytes left; modeChunked: bytes left in the chunk
	state     int   // modeChunked

	mu       sync.Mutex
	reading  bool
	done     bool  // the body ended, failed or was closed
	err      error // what Read returns once done
	released bool  // the connection went back or was closed
}

// Read implements io.Reader.
func (b *respBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.reading = true
	b.mu.Unlock()

	var n int
	var err error
	switch b.mode {
	case modeLength:
		n, err = b.readLength(p)
	case modeChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.x.pc.br.Read(p)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	if b.done { // closed while reading: the connection was closed under us
		b.release(false)
		return n, b.err
	}
	if err != nil {
		b.done = true
		if err == io.EOF {
			b.err = io.EOF
			b.release(true)
		} else {
			if cerr := b.resp.Request.Context().Err(); cerr != nil {
				err = cerr
			}
			b.err = err
			b.release(false)
		}
	}
	return n, err
}

// release ends the exchange once; b.mu is held.
func (b *respBody) release(reuse bool) {
	if !b.released {
		b.released = true
		b.x.finish(reuse && b.mode != modeClose)
	}
}

// Close implements io.Closer.
func (b *respBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		if b.err != io.EOF {
			b.err = errClosedBody
		}
		return nil
	}
	b.done, b.err = true, errClosedBody
	if b.reading {
		// Read is blocked on the connection: closing it ends the Read,
		// which releases the exchange.
		b.x.pc.nc.Close()
		return nil
	}
	b.release(b.drainBuffered())
	return nil
}

// drainBuffered skips the rest of the body when it is already buffered (no
// wait), and reports whether it did.
func (b *respBody) drainBuffered() bool {
	br := b.x.pc.br
	switch b.mode {
	case modeLength:
		if b.remaining <= int64(br.Buffered()) {
			_, err := br.Discard(int(b.remaining))
			return err == nil
		}
	case modeChunked:
		if b.state == chunkSize {
			if p, _ := br.Peek(min(5, br.Buffered())); bytes.Equal(p, []byte("0\r\n\r\n")) {
				_, err := br.Discard(5)
				return err == nil
			}
		}
	}
	return false
}

func (b *respBody) readLength(p []byte) (int, error) {
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.x.pc.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunked reads chunk data into p. Once it has some, it goes on only as
// far as the buffered bytes go, so it returns io.EOF with the last data when
// the last chunk is already there (and the connection goes back at once).
func (b *respBody) readChunked(p []byte) (n int, err error) {
	br := b.x.pc.br
	for n < len(p) {
		switch b.state {
		case chunkSize:
			if n > 0 {
				if b.lastChunkBuffered(br) {
					return n, b.endChunked(br)
				}
				if !lineBuffered(br) {
					return n, nil
				}
			}
			size, err := readChunkSize(br)
			if err != nil {
				return n, err
			}
			if size == 0 {
				return n, b.endChunked(br)
			}
			b.remaining, b.state = size, chunkData
		case chunkData:
			if n > 0 && br.Buffered() == 0 {
				return n, nil
			}
			m := min(int64(len(p)-n), b.remaining)
			k, err := br.Read(p[n : n+int(m)])
			n += k
			b.remaining -= int64(k)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			if b.remaining == 0 {
				b.state = chunkCRLF
			}
		case chunkCRLF:
			if n > 0 && br.Buffered() < 2 {
				return n, nil
			}
			var crlf [2]byte
			if _, err := io.ReadFull(br, crlf[:]); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			if crlf != [2]byte{'\r', '\n'} {
				return n, protoErr("chunk data not followed by CR LF")
			}
			b.state = chunkSize
		}
	}
	return n, nil
}

// lastChunkBuffered reports whether the last chunk without trailers is next
// in the buffer, and consumes its size line then.
func (b *respBody) lastChunkBuffered(br *bufio.Reader) bool {
	p, _ := br.Peek(min(5, br.Buffered()))
	if bytes.Equal(p, []byte("0\r\n\r\n")) {
		_, _ = br.Discard(3)
		return true
	}
	return false
}

// endChunked reads the trailer after the last chunk into resp.Trailer.
func (b *respBody) endChunked(br *bufio.Reader) error {
	t, err := readTrailer(br, b.x.pc.c.cfg.MaxHeaderBytes, b.resp.Trailer)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	b.resp.Trailer = t
	return io.EOF
}

// lineBuffered reports whether a whole line is in br's buffer.
func lineBuffered(br *bufio.Reader) bool {
	p, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(p, '\n') >= 0
}

// readChunkSize reads a chunk-size line: hex digits, optional extensions,
// CR LF.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return 0, protoErr("chunk-size line too long")
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, protoErr("chunk-size line not ended by CR LF")
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, protoErr("chunk size too large")
		}
		size = size<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, protoErr("chunk-size line %q", trunc(string(line)))
	}
	rest := bytes.TrimLeft(line[i:], " \t")
	if len(rest) > 0 && rest[0] != ';' {
		return 0, protoErr("chunk-size line %q", trunc(string(line)))
	}
	if checkText(string(rest)) != nil {
		return 0, protoErr("control byte in a chunk extension")
	}
	return size, nil
}

// switchedBody is a 101 response's body: the connection itself, for the
// protocol the server switched to (what it already sent is read first).
type switchedBody struct {
	pc *pconn
}

// Read implements io.Reader.
func (s *switchedBody) Read(p []byte) (int, error) {
	if br := s.pc.br; br != nil && br.Buffered() > 0 {
		return br.Read(p)
	}
	return s.pc.nc.Read(p)
}

// Write implements io.Writer.
func (s *switchedBody) Write(p []byte) (int, error) { return s.pc.nc.Write(p) }

// Close implements io.Closer: it closes the connection.
func (s *switchedBody) Close() error { return s.pc.nc.Close() }

// CloseWrite half-closes the connection when it can (a TCP or TLS one).
func (s *switchedBody) CloseWrite() error {
	if cw, ok := s.pc.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
