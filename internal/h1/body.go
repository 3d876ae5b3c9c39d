package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"github.com/portcullis/portcullis/internal/fieldtext"
)

// Body errors. A request whose body fails to frame ends its connection.
var (
	errChunkLine   = errors.New("h1: malformed chunk line")
	errChunkSize   = errors.New("h1: bad chunk size")
	errChunkEnd    = errors.New("h1: chunk data not followed by CRLF")
	errTrailerLine = errors.New("h1: malformed trailer")
	errTrailerSize = errors.New("h1: trailer too large")
)

// maxDrain is how much of a body the handler left unread is read and thrown
// away so that the connection can serve the next request (net/http's
// figure); a longer rest closes the connection instead.
const maxDrain = 256 << 10

// body is a request body read from the connection: Content-Length bytes, or
// chunks with their extensions and trailers. It is safe for a Read from
// another goroutine (a transport sending it upstream) racing the end of the
// request: Close and the server's own end of the request take mu.
type body struct {
	mu      sync.Mutex
	s       *stream
	br      *bufio.Reader
	left    int64 // Content-Length bytes left, or bytes left in the chunk
	chunked bool
	crlf    bool // chunk data was read: a CRLF comes next
	eof     bool
	closed  bool
	err     error
	limit   int // trailer bytes allowed
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.s != nil {
		b.s.sendContinue()
	}
	return b.readLocked(p)
}

// readLocked reads with mu held.
func (b *body) readLocked(p []byte) (int, error) {
	switch {
	case b.err != nil:
		return 0, b.err
	case b.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err = b.br.Read(p)
		b.left -= int64(n)
		switch {
		case b.left == 0:
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
		if b.s != nil {
			b.s.bodyDone()
		}
	case err != nil:
		b.err = err
	}
	return n, err
}

// readChunked reads chunk data into p, reading chunk lines and the trailer
// as they come.
func (b *body) readChunked(p []byte) (int, error) {
	for b.left == 0 {
		if b.crlf {
			if err := b.expectCRLF(); err != nil {
				return 0, err
			}
			b.crlf = false
		}
		size, err := b.chunkLine()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		b.left, b.crlf = size, true
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) expectCRLF() error {
	c, err := b.br.ReadByte()
	if err == nil && c == '\r' {
		c, err = b.br.ReadByte()
		if err == nil && c == '\n' {
			return nil
		}
	}
	return eofOr(err, errChunkEnd)
}

// chunkLine reads "size[;ext]CRLF": hexadecimal digits (at most 16, below
// 2^63), optional whitespace, optional extensions (ignored), and a CRLF (a
// bare LF is refused, as net/http does).
func (b *body) chunkLine() (int64, error) {
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 0, errChunkLine
		}
		return 0, eofOr(err, errChunkLine)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, errChunkLine
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		v := hexVal(line[i])
		if v < 0 {
			break
		}
		if i == 16 || size > (1<<63-1)>>4 {
			return 0, errChunkSize
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return 0, errChunkSize
	}
	for ; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
	}
	if i < len(line) {
		if line[i] != ';' {
			return 0, errChunkSize
		}
		for _, c := range line[i+1:] {
			if c < ' ' && c != '\t' || c == 0x7f {
				return 0, errChunkLine
			}
		}
	}
	return size, nil
}

// readTrailer reads the trailer fields after the last chunk into the
// request's Trailer.
func (b *body) readTrailer() error {
	var tr http.Header
	total := 0
	for {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return errTrailerSize
			}
			return eofOr(err, errTrailerLine)
		}
		total += len(line)
		if total > b.limit {
			return errTrailerSize
		}
		s := string(line)
		s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
		if s == "" {
			break
		}
		name, value, ok := strings.Cut(s, ":")
		if !ok || name == "" || !fieldtext.IsToken(name) {
			return errTrailerLine
		}
		value = fieldtext.TrimOWS(value)
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				return errTrailerLine
			}
		}
		if tr == nil {
			tr = make(http.Header)
		}
		tr.Add(textproto.CanonicalMIMEHeaderKey(name), value)
	}
	if tr != nil && b.s != nil {
		r := b.s.req
		if r.Trailer == nil {
			r.Trailer = tr
		} else {
			for k, v := range tr {
				r.Trailer[k] = v
			}
		}
	}
	return nil
}

// Close implements io.Closer: later reads fail. The server reads what is
// left (or closes the connection) when the request ends.
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// finish ends the body when the handler returned: it reports whether the
// body was read to its end (draining up to maxDrain bytes when drain), so
// that the connection can read the next request.
func (b *body) finish(drain bool, beforeDrain func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	if b.err != nil || !drain || (!b.chunked && b.left > maxDrain) {
		return false
	}
	b.s = nil // no 100-continue, no background read from here
	beforeDrain()
	var buf [2048]byte
	for n := 0; n < maxDrain; {
		m, err := b.readLocked(buf[:])
		n += m
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

func eofOr(err, other error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	return other
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
