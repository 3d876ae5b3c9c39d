package upstream

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// chunkReader serves s in reads of the sizes sizes gives (cycled; 0: all
// that fits), so a head arrives whole or split anywhere.
type chunkReader struct {
	s     string
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := len(p)
	if len(r.sizes) > 0 {
		if k := r.sizes[r.i%len(r.sizes)]; k > 0 && k < n {
			n = k
		}
		r.i++
	}
	n = copy(p[:n], r.s)
	r.s = r.s[n:]
	return n, nil
}

// readOutcome is what one readHead call did.
type readOutcome struct {
	N    int
	Err  string
	Head head
}

// compareHeads reads up to 3 heads from raw with both readers (the same
// buffer size and chunking) and reports the first difference: bytes
// consumed, error, the head read (fields, framing, trailer names), and the
// bytes left after the last head.
func compareHeads(raw string, max, bufSize int, sizes []int, withVals bool) error {
	newBR := func() *bufio.Reader {
		return bufio.NewReaderSize(&chunkReader{s: raw, sizes: sizes}, bufSize)
	}
	bn, br := newBR(), newBR()
	for i := range 3 {
		var vn, vr []string
		if withVals && i == 0 {
			vn, vr = make([]string, 8), make([]string, 8)
		}
		var got, want readOutcome
		var gerr, werr error
		got.N, gerr = readHead(bn, max, &got.Head, vn)
		want.N, werr = refReadHead(br, max, &want.Head, vr)
		if gerr != nil {
			got.Err = fmt.Sprintf("%T %v", gerr, gerr)
		}
		if werr != nil {
			want.Err = fmt.Sprintf("%T %v", werr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("head %d:\n got  %+v\n want %+v", i, got, want)
		}
		if gerr != nil {
			break
		}
	}
	restN, _ := io.ReadAll(bn)
	restR, _ := io.ReadAll(br)
	if string(restN) != string(restR) {
		return fmt.Errorf("left after the heads: got %q, want %q", restN, restR)
	}
	return nil
}

// genHead makes a response head, mostly well formed, with the odd
// malformation readHead must refuse (or accept) exactly as the reference
// does: line ends, obs-folds, bare CRs, control bytes, framing fields, names
// in any case, sizes around the limit; sometimes a second head or a body
// after it, sometimes cut short.
func genHead(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	// A third of the heads have malformations, each one rare, so that most
	// heads get as far as the framing fields.
	bad := rng.IntN(3) == 0
	odd := func(n int) bool { return bad && rng.IntN(n) == 0 }
	eol := func() string {
		switch {
		case rng.IntN(6) == 0:
			return "\n"
		case odd(15):
			return pick("\r\r\n", "\n\r", "\r")
		}
		return "\r\n"
	}
	var b strings.Builder
	for range 1 + rng.IntN(2) {
		switch {
		case rng.IntN(8) == 0:
			b.WriteString(pick("HTTP/1.1 100 Continue", "HTTP/1.1 103 Early Hints", "HTTP/1.1 102", "HTTP/1.0 100 Continue"))
		case odd(4):
			b.WriteString(pick("HTTP/1.1", "HTTP/1.0", "HTTP/2", "http/1.1", "", " HTTP/1.1", "HTTP/1.1\t", "HTTP/1.10"))
			b.WriteString(pick(" ", "  ", "", "\t"))
			b.WriteString(pick("200", "099", "2000", "20a", "", "999", "1xx", "-20"))
			b.WriteString(pick(" OK", "", " ", " Not  Found", " \x01bad", " a\rb", " é", " \x7f", "OK", "\r"))
		default:
			b.WriteString(pick("HTTP/1.1 ", "HTTP/1.1 ", "HTTP/1.1 ", "HTTP/1.0 ", "HTTP/1.1  "))
			b.WriteString(pick("200", "200", "204", "206", "304", "404", "101", "500", "299", "999"))
			b.WriteString(pick(" OK", " OK", "", " ", " Not  Found", " Custom Thing", " é\tx"))
		}
		b.WriteString(eol())
		for range rng.IntN(12) {
			switch {
			case rng.IntN(10) == 0:
				if rng.IntN(2) == 0 {
					b.WriteString(pick(" folded", "\tfolded  ", "  ", "\t", " two words "))
				} else {
					b.WriteString(pick(" a\rb", " x\x00", "\t\x7f"))
				}
				b.WriteString(eol())
				continue
			case odd(20):
				b.WriteString(pick("no colon", ":", "\r", "x", "\x00", ": v", "\rX: y"))
				b.WriteString(eol())
				continue
			}
			name := pick("Content-Length", "content-length", "CONTENT-LENGTH", "Transfer-Encoding", "transfer-encoding",
				"Connection", "connection", "Trailer", "trailer", "Pragma", "pragma", "Cache-Control", "cache-control",
				"Content-Type", "Date", "Set-Cookie", "set-cookie", "X-A", "x-a", "X-b", "x-B", "X_Under", "x-",
				"-x", "--", "1abc", "Etag", "ETag", "WWW-Authenticate", "X-Long", "Keep-Alive", "Host", "a", "Z", "x-a-b")
			switch {
			case rng.IntN(10) == 0:
				// A random token, mixed case.
				const tok = "abcxyzABCXYZ019-!#$%&'*+.^_`|~"
				var nb strings.Builder
				for range 1 + rng.IntN(12) {
					nb.WriteByte(tok[rng.IntN(len(tok))])
				}
				name = nb.String()
			case odd(10):
				name = pick("Foo Bar", "Foo ", "", "Ünï", "A@b", "x\ty", "a\rb", "(x)")
			case rng.IntN(40) == 0:
				name = strings.Repeat(pick("X-Long-", "x-long-", "X@"), 1+rng.IntN(20))
			}
			b.WriteString(name)
			b.WriteString(pick(":", ": ", ": ", ": ", ":\t", ":  ", ": \t "))
			var v string
			switch {
			case odd(8):
				v = pick("a\rb", "a\x00b", "a\x7fb", "\x1b", "x\r")
			case name == "Content-Length" || name == "content-length" || name == "CONTENT-LENGTH":
				v = pick("1024", "0", "5", "12", "5", "-1", "+5", "0x10", "1 2", "99999999999999999999", "")
			case strings.EqualFold(name, "Transfer-Encoding"):
				v = pick("chunked", "chunked", "Chunked", "gzip", "gzip, chunked", "")
			case strings.EqualFold(name, "Connection"):
				v = pick("close", "keep-alive", "Keep-Alive, close", "upgrade", "x, close")
			case strings.EqualFold(name, "Trailer"):
				v = pick("X-A, x-b", "x-a, ,Etag", "Content-Length", "trailer", "", " , ")
			case rng.IntN(20) == 0:
				v = strings.Repeat(pick("0123456789abcdef", "\t", " x ", "\x01"), rng.IntN(64))
			default:
				v = pick("no-cache", "text/plain", "é", "\t", "a\tb", "", "Mon, 07 Dec 2026 19:31:45 GMT", "v", "\"e\"", "a=1; b=2")
			}
			b.WriteString(v)
			b.WriteString(pick("", "", "", " ", "\t", " \t "))
			b.WriteString(eol())
		}
		switch {
		case odd(8):
			return b.String() // cut short
		case odd(8):
			b.WriteString("\r") // cut after a CR
			return b.String()
		}
		b.WriteString(pick("\r\n", "\r\n", "\r\n", "\n"))
	}
	if rng.IntN(2) == 0 {
		b.WriteString(pick("hello", "0\r\n\r\n", "HTTP/1.1 200 OK\r\n", "\r\n"))
	}
	return b.String()
}

// The one-pass reader accepts, refuses and consumes exactly what the line by
// line reader it replaced did, over many generated heads, with the head whole
// in the buffer or arriving in pieces, and limits around its size.
func TestReadHeadMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 20))
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	for i := range n {
		raw := genHead(rng)
		max := DefaultMaxHeaderBytes
		switch rng.IntN(4) {
		case 0:
			max = 1 + rng.IntN(len(raw)+8)
		case 1:
			max = 1 + rng.IntN(64)
		}
		bufSize := []int{16, 32, 64, 256, 4096}[rng.IntN(5)]
		var sizes []int
		if rng.IntN(3) == 0 {
			for range 1 + rng.IntN(4) {
				sizes = append(sizes, rng.IntN(40))
			}
		}
		if err := compareHeads(raw, max, bufSize, sizes, rng.IntN(2) == 0); err != nil {
			t.Fatalf("case %d: %q max %d buffer %d reads %v: %v", i, raw, max, bufSize, sizes, err)
		}
	}
}

// FuzzReadHead compares the one-pass reader with the reference on any bytes.
func FuzzReadHead(f *testing.F) {
	for _, s := range []string{
		originHead,
		"HTTP/1.1 200 OK\r\nTrailer: X-A, x-b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
		"HTTP/1.1 200 OK\r\r\nX: a\r\r\n\r\n",
		"\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nset-cookie: a\r\nSet-Cookie: b\r\n\r\n",
	} {
		f.Add(s, uint16(0), uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw string, max uint16, buf, chunk uint8) {
		m := DefaultMaxHeaderBytes
		if max > 0 {
			m = int(max)
		}
		var sizes []int
		if chunk > 0 {
			sizes = []int{int(chunk)}
		}
		if err := compareHeads(raw, m, 16+int(buf)*16, sizes, chunk%2 == 0); err != nil {
			t.Fatal(err)
		}
	})
}
