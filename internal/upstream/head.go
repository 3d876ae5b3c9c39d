package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// ProtocolError is a response this client refuses to read: a malformed or
// ambiguous head (both Content-Length and Transfer-Encoding, an unknown
// transfer coding, a bad Content-Length, a head over the size limit) or bad
// chunked framing.
type ProtocolError struct{ Msg string }

// Error implements error.
func (e *ProtocolError) Error() string { return "malformed response: " + e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// head is a parsed response head.
type head struct {
	proto      string // "HTTP/1.1"
	minor      int
	status     int
	statusText string // "200 OK", as net/http's Response.Status
	header     http.Header
	close      bool  // the connection ends after this response
	chunked    bool  // Transfer-Encoding: chunked (HTTP/1.1)
	hasLength  bool  // a Content-Length was given
	length     int64 // its value
	trailer    http.Header
}

func (h *head) mime() textproto.MIMEHeader { return textproto.MIMEHeader(h.header) }

// scratch holds a head's bytes while it is read.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readHead reads one response head from br into h: the status line and the
// fields up to the empty line, at most max bytes. n is how many bytes it
// consumed (0: the connection ended or failed before the first byte). The
// fields' values go in vals when they fit (the caller gives it to one head
// only: the header map keeps it), else in a slice of their own.
func readHead(br *bufio.Reader, max int, h *head, vals []string) (n int, err error) {
	sp := scratch.Get().(*[]byte)
	buf := (*sp)[:0]
	defer func() {
		if cap(buf) <= 64<<10 {
			*sp = buf[:0]
			scratch.Put(sp)
		}
	}()
	// Lines are stored in buf, each ending with '\n' (the '\r' dropped).
	lines := 0
	for {
		line, err := br.ReadSlice('\n')
		n += len(line)
		for err == bufio.ErrBufferFull {
			if n > max {
				break
			}
			buf = append(buf, line...)
			line, err = br.ReadSlice('\n')
			n += len(line)
		}
		if n > max {
			return n, protoErr("response head larger than %d bytes", max)
		}
		if err != nil {
			return n, err
		}
		buf = append(buf, line...)
		// Drop the line's CR LF (or bare LF) and keep one '\n'.
		buf = buf[:len(buf)-1]
		if len(buf) > 0 && buf[len(buf)-1] == '\r' {
			buf = buf[:len(buf)-1]
		}
		if lines > 0 && (len(buf) == 0 || buf[len(buf)-1] == '\n') {
			break // the empty line
		}
		if lines == 0 && len(buf) == 0 {
			return n, protoErr("empty status line")
		}
		buf = append(buf, '\n')
		lines++
	}
	return n, parseHead(string(buf), lines-1, h, vals)
}

// parseHead parses s into h: the status line and fields lines, each ending
// in '\n'. The values go in vals when they fit.
func parseHead(s string, fields int, h *head, vals []string) error {
	*h = head{}
	line, rest, _ := strings.Cut(s, "\n")
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return protoErr("status line %q", trunc(line))
	}
	switch proto {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
	default:
		return protoErr("version %q in the status line", trunc(proto))
	}
	h.proto = proto
	h.statusText = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(h.statusText, " ")
	if len(code) != 3 || !isDigits(code) {
		return protoErr("status code %q", trunc(code))
	}
	h.status, _ = strconv.Atoi(code)
	if h.status < 100 {
		return protoErr("status code %q", code)
	}
	if err := checkText(h.statusText); err != nil {
		return protoErr("status line: %v", err)
	}

	hdr := make(http.Header, fields)
	if len(vals) < fields {
		vals = make([]string, fields)
	}
	var last string // the field a continuation line extends
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\n")
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: joined with one space (RFC 9112 §5.2), never in
			// a framing field.
			if last == "" {
				return protoErr("continuation line before any field")
			}
			if last == "Content-Length" || last == "Transfer-Encoding" {
				return protoErr("folded %s", last)
			}
			v := hdr[last]
			v[len(v)-1] = strings.TrimRight(v[len(v)-1]+" "+strings.TrimLeft(line, " \t"), " \t")
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return protoErr("field line without a colon: %q", trunc(line))
		}
		if !isToken(name) {
			return protoErr("field name %q", trunc(name))
		}
		value = strings.Trim(value, " \t")
		if err := checkText(value); err != nil {
			return protoErr("field %s: %v", name, err)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		last = key
		if v, ok := hdr[key]; ok {
			hdr[key] = append(v, value)
			continue
		}
		vals[0] = value
		hdr[key] = vals[0:1:1]
		vals = vals[1:]
	}
	h.header = hdr
	return h.framing()
}

// framing reads the fields that frame the body and the connection, as
// net/http does, and refuses what is ambiguous.
func (h *head) framing() error {
	hdr := h.header
	conn := hdr["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if h.minor == 0 {
		h.close = hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else if hasClose {
		h.close = true
		delete(hdr, "Connection")
	}
	if te, ok := hdr["Transfer-Encoding"]; ok {
		delete(hdr, "Transfer-Encoding")
		if h.minor > 0 {
			if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
				return protoErr("unsupported Transfer-Encoding %q", te)
			}
			h.chunked = true
		}
	}
	if cl, ok := hdr["Content-Length"]; ok {
		if h.chunked {
			return protoErr("both Content-Length and Transfer-Encoding")
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return protoErr("differing Content-Length values %q", cl)
			}
		}
		if len(cl) > 1 {
			hdr["Content-Length"] = cl[:1]
		}
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil || !isDigits(cl[0]) {
			return protoErr("Content-Length %q", trunc(cl[0]))
		}
		h.hasLength, h.length = true, int64(n)
	}
	if tr, ok := hdr["Trailer"]; ok && h.chunked {
		delete(hdr, "Trailer")
		t := make(http.Header)
		for _, v := range tr {
			for k := range strings.SplitSeq(v, ",") {
				k = textproto.TrimString(k)
				if k == "" {
					continue
				}
				k = http.CanonicalHeaderKey(k)
				switch k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return protoErr("Trailer names %s", k)
				}
				t[k] = nil
			}
		}
		if len(t) > 0 {
			h.trailer = t
		}
	}
	if p, ok := hdr["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	return nil
}

// readTrailer reads trailer fields after the last chunk, up to the empty line,
// into t (allocated when nil).
func readTrailer(br *bufio.Reader, max int, t http.Header) (http.Header, error) {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		n += len(line)
		if err == bufio.ErrBufferFull || n > max {
			return t, protoErr("trailer larger than %d bytes", max)
		}
		if err != nil {
			return t, err
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			return t, protoErr("trailer line not ended by CR LF")
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return t, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(string(name)) {
			return t, protoErr("trailer line %q", trunc(string(line)))
		}
		v := string(bytes.Trim(value, " \t"))
		if err := checkText(v); err != nil {
			return t, protoErr("trailer %s: %v", name, err)
		}
		if t == nil {
			t = make(http.Header)
		}
		k := textproto.CanonicalMIMEHeaderKey(string(name))
		t[k] = append(t[k], v)
	}
}

// isToken reports whether s is a non-empty RFC 9110 token (a field name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkText refuses control bytes other than HTAB in a field value or reason.
func checkText(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return errors.New("control byte in value")
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
