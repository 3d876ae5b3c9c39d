package phrase

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// DefaultMaxDecoded is the most a compressed response may decode to before
// its stream is cut (Decode): a decompression bomb never streams on. It is
// well above any text page, and above the 16 MiB max_scan ceiling, so the
// held prefix of a page (max_scan) is always decided on.
const DefaultMaxDecoded = 64 << 20

// UnreadableEncodingError reports a Content-Encoding Decode cannot undo
// (br, zstd, compress, several stacked codings…): the page cannot be scored,
// and the caller refuses it rather than relay it unscanned.
type UnreadableEncodingError struct{ Encoding string }

// Error implements error.
func (e *UnreadableEncodingError) Error() string {
	return fmt.Sprintf("phrase: content-encoding %q cannot be decoded for scanning", e.Encoding)
}

// DecodedTooLargeError is the error the stream of Decode fails with once the
// decoded body passes its limit.
type DecodedTooLargeError struct{ Max int64 }

// Error implements error.
func (e *DecodedTooLargeError) Error() string {
	return fmt.Sprintf("phrase: the compressed page decodes to more than %d bytes", e.Max)
}

// TextType reports whether a response with header h is text Filter scores
// (see Scannable), whatever its Content-Encoding.
func TextType(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil && mt == "" {
		return false
	}
	switch mt {
	case "text/html", "text/plain", "application/xhtml+xml", "text/xml", "application/xml", "application/json":
		return true
	}
	return false
}

// Encoding returns the response's Content-Encoding as one lower-case token
// ("" for none or identity), joining several fields or list elements with
// ", " so that stacked codings are seen (and refused) as such.
func Encoding(h http.Header) string {
	var parts []string
	for _, v := range h.Values("Content-Encoding") {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.ToLower(strings.Trim(t, " \t"))
			if t != "" && t != "identity" {
				parts = append(parts, t)
			}
		}
	}
	return strings.Join(parts, ", ")
}

// Decode returns body decoded from the Content-Encoding enc (as Encoding
// returns it): gzip (x-gzip) and deflate (zlib-wrapped, or raw deflate as
// some servers send it) are undone; "" returns body as it is; anything else
// fails with *UnreadableEncodingError, body left open. The decoded stream is
// bounded: past max bytes (<= 0: DefaultMaxDecoded) it fails with
// *DecodedTooLargeError, so the proxy cuts the response instead of streaming
// a decompression bomb. Closing the result closes body. A malformed
// compressed stream surfaces as a read error.
func Decode(enc string, body io.ReadCloser, max int64) (io.ReadCloser, error) {
	if max <= 0 {
		max = DefaultMaxDecoded
	}
	var r io.Reader
	switch enc {
	case "":
		return body, nil
	case "gzip", "x-gzip":
		r = &lazyReader{open: func() (io.Reader, error) { return gzip.NewReader(body) }}
	case "deflate":
		br := bufio.NewReader(body)
		r = &lazyReader{open: func() (io.Reader, error) {
			hdr, err := br.Peek(2)
			if err != nil && len(hdr) < 2 {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			// RFC 1950: CM 8, and the header checksum.
			if hdr[0]&0x0f == 8 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
				return zlib.NewReader(br)
			}
			return flate.NewReader(br), nil
		}}
	default:
		return nil, &UnreadableEncodingError{Encoding: enc}
	}
	return &decoded{r: r, body: body, left: max, max: max}, nil
}

// lazyReader opens its decompressor at the first Read, so that Decode itself
// reads nothing (a slow origin is waited for by the caller's reads).
type lazyReader struct {
	open func() (io.Reader, error)
	r    io.Reader
	err  error
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil && l.err == nil {
		l.r, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.r.Read(p)
}

// decoded is Decode's bounded stream.
type decoded struct {
	r         io.Reader
	body      io.Closer
	left, max int64
}

func (d *decoded) Read(p []byte) (int, error) {
	if d.left <= 0 {
		// One byte more tells a body of exactly max bytes from a larger one.
		var one [1]byte
		if n, err := d.r.Read(one[:]); n == 0 && errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, &DecodedTooLargeError{Max: d.max}
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.r.Read(p)
	d.left -= int64(n)
	return n, err
}

func (d *decoded) Close() error { return d.body.Close() }
