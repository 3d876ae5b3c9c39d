package httpguard

import "bytes"

// Reason says why a request was refused.
type Reason uint8

// The refused shapes.
const (
	// ReasonCLTE is a head with both Content-Length and Transfer-Encoding.
	ReasonCLTE Reason = iota + 1
	// ReasonTE10 is Transfer-Encoding in an HTTP/1.0 request.
	ReasonTE10
	// ReasonFold is an obsolete line folding (RFC 9112 §5.2) of any field in
	// a request, refused with 400 as nginx does.
	ReasonFold
	// ReasonSpace is whitespace in a field name, as in "Content-Length : 5"
	// (RFC 9112 §5.1: MUST be rejected with 400; net/http takes it for
	// another field, which a lenient front end may not).
	ReasonSpace
)

func (r Reason) String() string {
	switch r {
	case ReasonCLTE:
		return "Content-Length with Transfer-Encoding"
	case ReasonTE10:
		return "Transfer-Encoding in an HTTP/1.0 request"
	case ReasonFold:
		return "obsolete line folding in a header field"
	case ReasonSpace:
		return "whitespace in a field name"
	}
	return "unknown"
}

// state is where the follower is in the byte stream.
type state uint8

const (
	sReqStart     state = iota // before a request line (CR and LF skipped, as Go does after a POST)
	sMethod                    // in the method
	sTarget                    // in the request target
	sProto                     // in the protocol version
	sFieldStart                // at the start of a header line
	sFieldStartCR              // after a CR at the start of a header line
	sName                      // in a field name that may still be Content-Length or Transfer-Encoding
	sSkipName                  // in another field name (checked for whitespace only)
	sSkipLine                  // in the rest of a line that does not matter
	sValue                     // in the value of Content-Length or Transfer-Encoding
	sBodyCL                    // in a Content-Length body
	sChunkSize                 // in a chunk-size
	sChunkExt                  // in chunk extensions
	sChunkOWS                  // in whitespace after a chunk-size
	sChunkLF                   // after the CR ending a chunk line
	sChunkData                 // in chunk data
	sChunkDataCR               // expecting the CR after chunk data
	sChunkDataLF               // expecting the LF after chunk data
	sTrailerStart              // at the start of a trailer line
	sTrailerCR                 // after a CR at the start of a trailer line
	sTrailerLine               // in a trailer line
	sStopped                   // not following any more: bytes pass through
	sRefused                   // a request was refused: net/http gets the refusal line, then EOF
)

// field is a header field the follower cares about.
type field uint8

const (
	fOther field = iota
	fCL
	fTE
)

const (
	nameCL = "content-length"
	nameTE = "transfer-encoding"
)

// follower tracks HTTP/1.1 request framing over a byte stream. Its zero value
// is at the start of a request.
type follower struct {
	st      state
	reason  Reason
	cur     field   // the field whose name or value is being read
	last    field   // the field of the previous header line (for line folding)
	idx     uint8   // bytes of the method or of the field name matched so far
	crPend  bool    // a CR was seen inside a line (valid only right before its LF)
	http10  bool    // the request line says HTTP/1.0
	pri     bool    // the method is PRI (the HTTP/2 preface is "PRI * HTTP/2.0")
	star    bool    // the target is "*"
	proto   [9]byte // the protocol version of the request line (and its CR)
	protoN  uint8   // bytes in proto
	nCL     uint8   // Content-Length lines seen
	nTE     uint8   // Transfer-Encoding lines seen
	clBad   bool    // a Content-Length value is not a length, or two differ
	chunked bool    // the Transfer-Encoding value is "chunked"
	vDigits uint8   // bytes of "chunked" matched in a Transfer-Encoding value
	vState  uint8   // 0 leading whitespace, 1 in the token, 2 trailing whitespace, 3 invalid
	cl      uint64  // the Content-Length of the head
	v       uint64  // the value being read: a Content-Length or a chunk size
	left    uint64  // bytes left in a body or a chunk
}

// scan follows b. It returns the length of the prefix of b that may be
// delivered, which is len(b) unless a request is refused inside b: then f is
// sRefused and the prefix ends where net/http is to read the refusal instead
// (after the offending line, or before the offending byte of a name or a
// folded line, so that the refusal makes a line without a colon).
func (f *follower) scan(b []byte) int {
	for i := 0; i < len(b); {
		switch f.st {
		case sStopped, sRefused:
			return len(b)
		case sBodyCL, sChunkData:
			n := uint64(len(b) - i)
			if n > f.left {
				n = f.left
			}
			f.left -= n
			i += int(n)
			if f.left == 0 {
				if f.st == sBodyCL {
					f.st = sReqStart
				} else {
					f.st = sChunkDataCR
				}
			}
			continue
		case sSkipLine, sTrailerLine:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return len(b)
			}
			i += j + 1
			if f.st == sSkipLine {
				f.st = sFieldStart
			} else {
				f.st = sTrailerStart
			}
			continue
		case sFieldStart:
			// Most lines name another field: they are skipped here, in one
			// loop, down to the next line that may matter.
			for i < len(b) {
				switch b[i] {
				case '\n', '\r', ' ', '\t', 'c', 'C', 't', 'T':
				default:
					f.last = fOther
					j := i + 1
					for j < len(b) && b[j] != ':' && b[j] != ' ' && b[j] != '\n' {
						j++
					}
					if j == len(b) {
						f.st = sSkipName
						return len(b)
					}
					switch b[j] {
					case ' ':
						f.st, f.reason = sRefused, ReasonSpace
						return j // the name so far, then the refusal: a line with no colon
					case '\n':
						i = j + 1 // a line without a colon: net/http answers 400
						continue
					}
					nl := bytes.IndexByte(b[j+1:], '\n')
					if nl < 0 {
						f.st = sSkipLine
						return len(b)
					}
					i = j + 1 + nl + 1
					continue
				}
				break
			}
			if i == len(b) {
				return len(b)
			}
		case sSkipName:
			// Names are short: a plain loop beats three IndexByte calls.
			j := i
			for j < len(b) && b[j] != ':' && b[j] != ' ' && b[j] != '\n' {
				j++
			}
			if j == len(b) {
				return len(b)
			}
			switch b[j] {
			case ':':
				f.st = sSkipLine
			case '\n':
				f.st = sFieldStart // a line without a colon: net/http answers 400
			default:
				f.st, f.reason = sRefused, ReasonSpace
				return j // the name so far, then the refusal: a line with no colon
			}
			i = j + 1
			continue
		case sName:
			// The rest of the name at once when it is all here.
			name := nameCL
			if f.cur == fTE {
				name = nameTE
			}
			rest := name[f.idx:]
			if len(b)-i <= len(rest) {
				break
			}
			if equalFold(b[i:i+len(rest)], rest) && b[i+len(rest)] == ':' {
				i += len(rest) + 1
				f.st, f.vState, f.vDigits, f.v, f.crPend = sValue, 0, 0, 0, false
			} else {
				f.last = fOther
				f.st = sSkipName // checks the name for whitespace
			}
			continue
		case sValue:
			nl := bytes.IndexByte(b[i:], '\n')
			if nl < 0 {
				break
			}
			for _, c := range b[i : i+nl] {
				f.value(c)
			}
			i += nl + 1
			if f.endField() {
				f.st = sRefused
				return i
			}
			continue
		case sTarget:
			// The target needs no look, only its end: a space, or an LF
			// (no version: net/http answers 400 and closes).
			seg := b[i:]
			sp := bytes.IndexByte(seg, ' ')
			if sp >= 0 {
				seg = seg[:sp]
			}
			if bytes.IndexByte(seg, '\n') >= 0 {
				f.st = sStopped
				continue
			}
			if len(seg) > 0 {
				f.star = f.idx == 0 && len(seg) == 1 && seg[0] == '*'
				f.idx = 1
			}
			i += len(seg)
			if sp >= 0 {
				i++
				f.st = sProto
			}
			continue
		case sProto:
			seg := b[i:]
			nl := bytes.IndexByte(seg, '\n')
			if nl >= 0 {
				seg = seg[:nl]
			}
			if int(f.protoN)+len(seg) > len(f.proto) {
				f.st = sStopped // no HTTP version: net/http answers 400 and closes
				continue
			}
			f.protoN += uint8(copy(f.proto[f.protoN:], seg))
			i += len(seg)
			if nl >= 0 {
				i++
				f.endRequestLine()
			}
			continue
		}
		c := b[i]
		i++
		if f.step(c) {
			f.st = sRefused
			if f.reason == ReasonFold || f.reason == ReasonSpace {
				return i - 1 // the offending byte never reaches net/http
			}
			return i
		}
	}
	return len(b)
}

// step follows one byte in the states scan does not skip through. It returns
// true when the request is refused: after c (an LF ending the line) or, for
// ReasonFold and ReasonSpace, before c.
func (f *follower) step(c byte) bool {
	switch f.st {
	case sReqStart:
		switch {
		case c == '\r' || c == '\n':
		case isToken(c):
			*f = follower{st: sMethod, idx: 1, pri: c == 'P'}
		default:
			f.st = sStopped // not HTTP/1 (TLS, WebSocket frames, a tunnel): net/http rejects it or has left
		}
	case sMethod:
		switch {
		case c == ' ':
			f.pri = f.pri && f.idx == 3
			f.idx = 0
			f.st = sTarget
		case isToken(c):
			if f.idx < 3 {
				f.pri = f.pri && c == "PRI"[f.idx]
			}
			if f.idx < 255 {
				f.idx++
			}
		default:
			f.st = sStopped
		}
	case sFieldStart:
		switch c {
		case '\n':
			f.endHead()
		case '\r':
			f.st = sFieldStartCR
		case ' ', '\t':
			// Obsolete line folding (RFC 9112 §5.2), of any field: refused as
			// nginx does, so that no two parsers join it differently.
			f.reason = ReasonFold
			return true
		case 'c', 'C':
			f.cur, f.idx, f.st = fCL, 1, sName
		case 't', 'T':
			f.cur, f.idx, f.st = fTE, 1, sName
		default:
			f.last = fOther
			f.st = sSkipName
		}
	case sFieldStartCR:
		if c != '\n' {
			f.st = sStopped // a line starting with a bare CR: net/http answers 400
			return false
		}
		f.endHead()
	case sName:
		name := nameCL
		if f.cur == fTE {
			name = nameTE
		}
		switch {
		case int(f.idx) == len(name) && c == ':':
			f.st, f.vState, f.vDigits, f.v, f.crPend = sValue, 0, 0, 0, false
		case int(f.idx) < len(name) && lower(c) == name[f.idx]:
			f.idx++
		case c == ' ':
			f.reason = ReasonSpace
			return true
		case c == ':':
			f.last = fOther
			f.st = sSkipLine
		case c == '\n':
			f.last = fOther
			f.st = sFieldStart
		default:
			f.last = fOther
			f.st = sSkipName
		}
	case sValue:
		return f.value(c)
	case sChunkSize:
		switch {
		case hexVal(c) >= 0:
			if f.idx == 16 {
				f.st = sStopped // net/http: chunk length too large
				return false
			}
			f.v = f.v<<4 | uint64(hexVal(c))
			f.idx++
		case f.idx == 0:
			f.st = sStopped
		case c == ';':
			f.st = sChunkExt
		case c == ' ' || c == '\t':
			f.st = sChunkOWS
		case c == '\r':
			f.st = sChunkLF
		default:
			f.st = sStopped
		}
	case sChunkExt:
		switch c {
		case '\r':
			f.st = sChunkLF
		case '\n':
			f.st = sStopped // net/http: chunked line ends with bare LF
		}
	case sChunkOWS:
		switch c {
		case ' ', '\t':
		case '\r':
			f.st = sChunkLF
		default:
			f.st = sStopped // net/http accepts whitespace only at the end of the line
		}
	case sChunkLF:
		switch {
		case c != '\n':
			f.st = sStopped
		case f.v == 0:
			f.st = sTrailerStart
		default:
			f.st, f.left = sChunkData, f.v
		}
	case sChunkDataCR:
		if c != '\r' {
			f.st = sStopped
		} else {
			f.st = sChunkDataLF
		}
	case sChunkDataLF:
		if c != '\n' {
			f.st = sStopped
		} else {
			f.st, f.v, f.idx = sChunkSize, 0, 0
		}
	case sTrailerStart:
		switch c {
		case '\n':
			f.st = sReqStart
		case '\r':
			f.st = sTrailerCR
		default:
			f.st = sTrailerLine
		}
	case sTrailerCR:
		if c != '\n' {
			f.st = sStopped
		} else {
			f.st = sReqStart
		}
	}
	return false
}

// endRequestLine ends the request line, whose version is in f.proto.
func (f *follower) endRequestLine() {
	p := f.proto[:f.protoN]
	if len(p) > 0 && p[len(p)-1] == '\r' {
		p = p[:len(p)-1]
	}
	if f.pri && f.star && string(p) == "HTTP/2.0" {
		f.st = sStopped // the HTTP/2 preface: net/http serves h2c or rejects it
		return
	}
	f.http10 = string(p) == "HTTP/1.0"
	f.st = sFieldStart
}

// value follows one byte of a Content-Length or Transfer-Encoding value.
func (f *follower) value(c byte) bool {
	if c == '\n' {
		return f.endField()
	}
	if f.crPend || c == '\r' {
		// A CR is valid only right before the LF; net/http refuses a value
		// holding one, so its length no longer matters.
		if f.crPend {
			f.vState = 3
		}
		f.crPend = c == '\r'
		return false
	}
	if c == ' ' || c == '\t' {
		if f.vState == 1 {
			f.vState = 2
		}
		return false
	}
	if f.vState == 2 || f.vState == 3 {
		f.vState = 3
		return false
	}
	f.vState = 1
	if f.cur == fCL {
		// As strconv.ParseUint(v, 10, 63): digits only, leading zeros allowed.
		d := uint64(c - '0')
		if c < '0' || c > '9' || f.v > (1<<63-1-d)/10 {
			f.vState = 3
			return false
		}
		f.v = f.v*10 + d
		return false
	}
	const chunked = "chunked"
	if int(f.vDigits) < len(chunked) && lower(c) == chunked[f.vDigits] {
		f.vDigits++
	} else {
		f.vState = 3
	}
	return false
}

// endField ends a Content-Length or Transfer-Encoding line and reports whether
// the request is refused.
func (f *follower) endField() bool {
	if f.cur == fCL {
		ok := f.vState == 1 || f.vState == 2
		if !ok || (f.nCL > 0 && f.v != f.cl) {
			f.clBad = true
		}
		f.cl = f.v
		if f.nCL < 255 {
			f.nCL++
		}
	} else {
		f.chunked = (f.vState == 1 || f.vState == 2) && f.vDigits == 7
		if f.nTE < 255 {
			f.nTE++
		}
	}
	f.last, f.cur = f.cur, fOther
	f.st = sFieldStart
	switch {
	case f.nTE > 0 && f.nCL > 0:
		f.reason = ReasonCLTE
	case f.nTE > 0 && f.http10:
		f.reason = ReasonTE10
	default:
		return false
	}
	return true
}

// endHead picks the body framing at the end of a head, as net/http does.
func (f *follower) endHead() {
	switch {
	case f.nTE > 0:
		if f.nTE > 1 || !f.chunked {
			f.st = sStopped // net/http answers 501 and closes
			return
		}
		f.st, f.v, f.idx = sChunkSize, 0, 0
	case f.clBad:
		f.st = sStopped // net/http answers 400 and closes
	case f.nCL > 0 && f.cl > 0:
		f.st, f.left = sBodyCL, f.cl
	default:
		f.st = sReqStart
	}
}

// equalFold reports whether b is name (lower case) in any case.
func equalFold(b []byte, name string) bool {
	for k := range len(name) {
		if lower(b[k]) != name[k] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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

// isToken reports whether c is a tchar (RFC 9110 §5.6.2).
func isToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
