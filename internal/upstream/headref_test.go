package upstream

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"github.com/portcullis/portcullis/internal/fieldtext"
	"golang.org/x/net/http/httpguts"
)

// The response-head reader as it was before the one-pass parser (commit
// f159d9b), kept as the reference the differential tests compare with: it
// copies each line into a scratch buffer (CR dropped) and parses the result.

var refScratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func refReadHead(br *bufio.Reader, max int, h *head, vals []string) (n int, err error) {
	sp := refScratch.Get().(*[]byte)
	buf := (*sp)[:0]
	defer func() {
		if cap(buf) <= 64<<10 {
			*sp = buf[:0]
			refScratch.Put(sp)
		}
	}()
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
		buf = buf[:len(buf)-1]
		if len(buf) > 0 && buf[len(buf)-1] == '\r' {
			buf = buf[:len(buf)-1]
		}
		if lines > 0 && (len(buf) == 0 || buf[len(buf)-1] == '\n') {
			break
		}
		if lines == 0 && len(buf) == 0 {
			return n, protoErr("empty status line")
		}
		buf = append(buf, '\n')
		lines++
	}
	return n, refParseHead(string(buf), lines-1, h, vals)
}

func refParseHead(s string, fields int, h *head, vals []string) error {
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
	var last string
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\n")
		if line[0] == ' ' || line[0] == '\t' {
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
		if !fieldtext.IsToken(name) {
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
	return refFraming(h)
}

func refFraming(h *head) error {
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
