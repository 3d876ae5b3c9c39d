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

	"github.com/portcullis/portcullis/internal/fieldtext"
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

// scratch holds a head's bytes while it is read, when it did not arrive whole.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readHead reads one response head from br into h: the status line and the
// fields up to the empty line, at most max bytes. n is how many bytes it
// consumed (0: the connection ended or failed before the first byte). The
// fields' values go in vals when they fit (the caller gives it to one head
// only: the header map keeps it), else in a slice of their own.
//
// A head that is whole in br's buffer (the usual case: one read takes the
// answer) is parsed from there; else its lines are gathered first
// (readLines). Both consume and refuse exactly the same bytes.
func readHead(br *bufio.Reader, max int, h *head, vals []string) (n int, err error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return 0, err // as ReadSlice would: nothing consumed
		}
	}
	b, _ := br.Peek(br.Buffered())
	if len(b) > max {
		b = b[:max]
	}
	end, total, fields := headEnd(b)
	if total == 0 {
		return readLines(br, max, h, vals)
	}
	s := string(b[:end])
	br.Discard(total)
	return total, parseHead(s, fields, h, vals)
}

// headEnd finds a whole head at the start of b: end is where its empty line
// starts, total where it ends, fields the number of lines between the
// status line and the empty line. total is 0 when b holds no whole head,
// or when its first line is empty (readLines refuses it).
func headEnd(b []byte) (end, total, fields int) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 || i == 1 && b[0] == '\r' {
		return 0, 0, 0
	}
	for off := i + 1; ; fields++ {
		i = bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return 0, 0, 0
		}
		if i == 0 || i == 1 && b[off] == '\r' {
			return off, off + i + 1, fields
		}
		off += i + 1
	}
}

// readLines reads a head line by line into a scratch buffer, each line as it
// came (CR LF or bare LF), then parses it.
func readLines(br *bufio.Reader, max int, h *head, vals []string) (n int, err error) {
	sp := scratch.Get().(*[]byte)
	buf := (*sp)[:0]
	defer func() {
		if cap(buf) <= 64<<10 {
			*sp = buf[:0]
			scratch.Put(sp)
		}
	}()
	lines := 0
	for {
		start := len(buf)
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
		// The line without its LF and the one CR before it, if any.
		l := len(buf) - start - 1
		if l > 0 && buf[len(buf)-2] == '\r' {
			l--
		}
		if l == 0 {
			if lines == 0 {
				return n, protoErr("empty status line")
			}
			buf = buf[:start] // the empty line
			break
		}
		lines++
	}
	return n, parseHead(string(buf), lines-1, h, vals)
}

// framing field bits: which of the fields framing reads a head has.
const (
	fConnection = 1 << iota
	fTransferEncoding
	fContentLength
	fTrailer
	fPragma
)

// parseHead parses s into h: the status line and fields lines, each ending
// in LF or CR LF (one CR dropped). The values go in vals when they fit.
func parseHead(s string, fields int, h *head, vals []string) error {
	*h = head{}
	i := strings.IndexByte(s, '\n')
	line, rest := dropCR(s[:i]), s[i+1:]
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
	code := h.statusText
	if i := strings.IndexByte(code, ' '); i >= 0 {
		code = code[:i]
	}
	if len(code) != 3 || !isDigits(code) {
		return protoErr("status code %q", trunc(code))
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
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
	var has int     // the framing fields seen
	var seen [8]string
	nseen := 0
	for rest != "" {
		i := strings.IndexByte(rest, '\n')
		line, rest = dropCR(rest[:i]), rest[i+1:]
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
		// The name, checked as a token and as canonical in one pass.
		j, canonical, upper := 0, true, true
		for ; j < len(line); j++ {
			c := line[j]
			if c == ':' {
				break
			}
			if !httpguts.IsTokenRune(rune(c)) {
				j = -1
				break
			}
			if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
				canonical = false
			}
			upper = c == '-'
		}
		if j < 0 || j == len(line) {
			name, _, ok := strings.Cut(line, ":")
			if !ok {
				return protoErr("field line without a colon: %q", trunc(line))
			}
			return protoErr("field name %q", trunc(name))
		}
		name := line[:j]
		if j == 0 {
			return protoErr("field name %q", name)
		}
		value := fieldtext.TrimOWS(line[j+1:])
		if err := checkText(value); err != nil {
			return protoErr("field %s: %v", name, err)
		}
		key := name
		if !canonical {
			key = textproto.CanonicalMIMEHeaderKey(name)
		}
		last = key
		switch key {
		case "Connection":
			has |= fConnection
		case "Transfer-Encoding":
			has |= fTransferEncoding
		case "Content-Length":
			has |= fContentLength
		case "Trailer":
			has |= fTrailer
		case "Pragma":
			has |= fPragma
		}
		// A repeated field: the names seen so far are compared while
		// there are few, rather than looked up in the map.
		dup := false
		if nseen < len(seen) {
			for _, k := range seen[:nseen] {
				if k == key {
					dup = true
					break
				}
			}
			if !dup {
				seen[nseen] = key
				nseen++
			}
		} else {
			_, dup = hdr[key]
		}
		if dup {
			hdr[key] = append(hdr[key], value)
			continue
		}
		vals[0] = value
		hdr[key] = vals[0:1:1]
		vals = vals[1:]
	}
	h.header = hdr
	return h.framing(has)
}

// dropCR drops one CR at the end of a line.
func dropCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}

// framing reads the fields that frame the body and the connection, as
// net/http does, and refuses what is ambiguous. has says which of them the
// head has (the others are not looked up).
func (h *head) framing(has int) error {
	hdr := h.header
	var conn []string
	if has&fConnection != 0 {
		conn = hdr["Connection"]
	}
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if h.minor == 0 {
		h.close = hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else if hasClose {
		h.close = true
		delete(hdr, "Connection")
	}
	if has&fTransferEncoding != 0 {
		te := hdr["Transfer-Encoding"]
		delete(hdr, "Transfer-Encoding")
		if h.minor > 0 {
			if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
				return protoErr("unsupported Transfer-Encoding %q", te)
			}
			h.chunked = true
		}
	}
	if has&fContentLength != 0 {
		cl := hdr["Content-Length"]
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
	if has&fTrailer != 0 && h.chunked {
		tr := hdr["Trailer"]
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
	if has&fPragma != 0 {
		if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
			if _, ok := hdr["Cache-Control"]; !ok {
				hdr["Cache-Control"] = []string{"no-cache"}
			}
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
		if !ok || !fieldtext.IsToken(string(name)) {
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
