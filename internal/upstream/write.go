package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/portcullis/portcullis/internal/fieldtext"
	"golang.org/x/net/http/httpguts"
)

// prepare checks what net/http's Transport checks before sending req and
// returns the Host it sends.
func prepare(req *http.Request) (string, error) {
	if req.Method != "" && !fieldtext.IsToken(req.Method) {
		return "", fmt.Errorf("upstream: invalid method %q", req.Method)
	}
	if req.Method == http.MethodConnect {
		return "", errors.New("upstream: CONNECT is not sent through the HTTP client")
	}
	if err := checkFields(req.Header, "header"); err != nil {
		return "", err
	}
	if err := checkFields(req.Trailer, "trailer"); err != nil {
		return "", err
	}
	if req.ContentLength != 0 && req.Body == nil {
		return "", fmt.Errorf("upstream: Request.ContentLength=%d with nil Body", req.ContentLength)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return "", err
	}
	if !httpguts.ValidHostHeader(host) {
		return "", fmt.Errorf("upstream: invalid Host header %q", host)
	}
	host = removeZone(host)
	if hasCTL(req.URL.RawQuery) || hasCTL(req.URL.Opaque) {
		return "", errors.New("upstream: control character in Request.URL")
	}
	return host, nil
}

// checkFields refuses field names and values net/http's Transport refuses.
func checkFields(h http.Header, what string) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("upstream: invalid %s field name %q", what, k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("upstream: invalid %s field value for %q", what, k)
			}
		}
	}
	return nil
}

// removeZone drops an IPv6 zone from a Host ("[fe80::1%en0]:80"), as net/http.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// reqBody is how a request's body is sent.
type reqBody struct {
	present   bool
	rc        io.ReadCloser
	length    int64 // with !chunked
	chunked   bool
	trailer   http.Header
	flushHead bool // send the head before reading the body (it may be slow)
}

// excluded are the fields writeHead writes itself (or not at all), as
// net/http's reqWriteExcludeHeader.
func excluded(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// writeHead writes req's head to bw as net/http's Transport does: request
// line (absolute form to a parent proxy), Host, User-Agent when given and not
// empty (never a default), Connection: close when req.Close, the body's
// framing, Trailer, the other fields sorted by name, then the parent's
// Proxy-Authorization.
func writeHead(bw *bufio.Writer, req *http.Request, host string, absolute bool, proxyAuth string) (reqBody, error) {
	var b reqBody
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	b.present = req.Body != nil && req.Body != http.NoBody
	if b.present {
		b.rc = req.Body
		b.length = req.ContentLength
		if b.length <= 0 {
			b.chunked = true // no probing for an empty body, unlike net/http
		}
		if len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked" {
			b.chunked = true
		}
		if b.chunked {
			b.trailer = req.Trailer
		}
		b.flushHead = !inMemory(req.Body)
	}

	bw.WriteString(method)
	bw.WriteByte(' ')
	u := req.URL
	if absolute && u.Scheme != "" && u.Opaque == "" {
		bw.WriteString(u.Scheme)
		bw.WriteString("://")
		bw.WriteString(host)
	}
	writeRequestURI(bw, u)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 {
		if v := fieldtext.TrimOWS(ua[0]); v != "" {
			bw.WriteString("User-Agent: ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if req.Close && !headerHasToken(req.Header["Connection"][:min(1, len(req.Header["Connection"]))], "close") {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case b.chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case b.length > 0, method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		bw.WriteString("Content-Length: ")
		var nb [20]byte
		bw.Write(strconv.AppendInt(nb[:0], b.length, 10))
		bw.WriteString("\r\n")
	}
	if b.chunked && len(b.trailer) > 0 {
		var arr [8]string
		keys := arr[:0]
		for k := range b.trailer {
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return b, fmt.Errorf("upstream: invalid Trailer key %s", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		bw.WriteString("Trailer: ")
		for i, k := range keys {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(k)
		}
		bw.WriteString("\r\n")
	}
	writeFields(bw, req.Header, true)
	if proxyAuth != "" && absolute {
		bw.WriteString("Proxy-Authorization: ")
		bw.WriteString(proxyAuth)
		bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return b, err
}

// writeFields writes h's fields sorted by name (skipping those writeHead
// writes itself when skip), each value trimmed, as net/http's Header.Write.
func writeFields(bw *bufio.Writer, h http.Header, skip bool) {
	var arr [32]string
	keys := arr[:0]
	for k := range h {
		if !skip || !excluded(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(fieldtext.TrimOWS(v))
			bw.WriteString("\r\n")
		}
	}
}

// writeRequestURI writes u.RequestURI() without building it.
func writeRequestURI(bw *bufio.Writer, u *url.URL) {
	if u.Opaque != "" {
		if strings.HasPrefix(u.Opaque, "//") {
			bw.WriteString(u.Scheme)
			bw.WriteByte(':')
		}
		bw.WriteString(u.Opaque)
	} else if p := u.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if u.ForceQuery || u.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
}

// inMemory reports whether a body is a reader over memory (net/http sends
// the head and such a body in one write).
func inMemory(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	}
	return false
}

// bodyError is a failure to read the request's own body: not the
// connection's fault.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// write sends the body (closing it): exactly its Content-Length, or chunked
// (flushed after each chunk) with the trailer.
func (b *reqBody) write(bw *bufio.Writer) error {
	defer b.rc.Close()
	if !b.chunked {
		left := b.length
		for left > 0 {
			if bw.Available() == 0 {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
			buf := bw.AvailableBuffer()
			buf = buf[:min(int64(cap(buf)), left)]
			n, err := b.rc.Read(buf)
			if n > 0 {
				if _, werr := bw.Write(buf[:n]); werr != nil {
					return werr
				}
				left -= int64(n)
			}
			if err == io.EOF {
				if left > 0 {
					return &bodyError{fmt.Errorf("ContentLength=%d with Body length %d", b.length, b.length-left)}
				}
				break
			}
			if err != nil {
				return &bodyError{err}
			}
		}
		return nil
	}
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	buf := *bp
	for {
		n, err := b.rc.Read(buf)
		if n > 0 {
			var nb [18]byte
			size := strconv.AppendInt(nb[:0], int64(n), 16)
			size = append(size, '\r', '\n')
			bw.Write(size)
			bw.Write(buf[:n])
			bw.WriteString("\r\n")
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &bodyError{err}
		}
	}
	bw.WriteString("0\r\n")
	if len(b.trailer) > 0 {
		writeFields(bw, b.trailer, false)
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// close closes a body that will not be sent.
func (b *reqBody) close() {
	if b.rc != nil {
		b.rc.Close()
	}
}

// headerHasToken reports whether the comma-separated values hold token (any case).
func headerHasToken(vv []string, token string) bool {
	return httpguts.HeaderValuesContainsToken(vv, token)
}
