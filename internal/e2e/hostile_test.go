package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileCase is one request (or pipelined pair) sent as raw bytes. ORIGIN in raw is
// replaced by the origin's host:port.
type hostileCase struct {
	name string
	raw  string
	// reject: the proxy must answer 4xx (or 501 for an unknown transfer coding) and
	// the origin must receive nothing. Other cases may be normalised (Go's parser
	// drops Content-Length beside chunked) as long as the
	// origin sees exactly the requests the proxy answered for.
	reject bool
}

// smuggledBody is a request hidden in a body: it must stay a body.
const smuggledBody = "GET /smuggled HTTP/1.1\r\nHost: smuggled.test\r\n\r\n"

// smugglingCases are the parser-differential attacks of research/reverse.md §5, in
// absolute form (forward mode); reverse mode sends the same bytes in origin form.
var smugglingCases = []hostileCase{
	{name: "cl-te", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://ORIGIN/second HTTP/1.1\r\nHost: ORIGIN\r\n\r\n"},
	{name: "te-cl", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\nGET http://ORIGIN/second HTTP/1.1\r\nHost: ORIGIN\r\n\r\n"},
	{name: "duplicate-cl-differ", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd", reject: true},
	{name: "cl-list", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: 4, 40\r\n\r\nabcd", reject: true},
	{name: "cl-plus", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: +4\r\n\r\nabcd", reject: true},
	{name: "cl-negative", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: -1\r\n\r\nabcd", reject: true},
	{name: "cl-hex", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: 0x4\r\n\r\nabcd", reject: true},
	{name: "cl-space-before-colon", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length : 4\r\n\r\nabcd", reject: true},
	{name: "te-casing", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: ChUnKeD\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET http://ORIGIN/second HTTP/1.1\r\nHost: ORIGIN\r\n\r\n"},
	{name: "te-xchunked", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\nabcd", reject: true},
	{name: "te-identity", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\nabcd", reject: true},
	{name: "te-list", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", reject: true},
	{name: "te-twice", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", reject: true},
	{name: "te-leading-space-name", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\n Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nabcd", reject: true},
	{name: "te-http10", raw: "POST http://ORIGIN/a HTTP/1.0\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
	{name: "te-vertical-tab", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding:\x0bchunked\r\nContent-Length: 4\r\n\r\nabcd", reject: true},
	{name: "obs-fold", raw: "GET http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nX-Folded: one\r\n two\r\n\r\n", reject: true},
	{name: "obs-fold-te", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET http://ORIGIN/second HTTP/1.1\r\nHost: ORIGIN\r\n\r\n"},
	{name: "bare-lf", raw: "GET http://ORIGIN/a HTTP/1.1\nHost: ORIGIN\nX-A: b\n\nGET http://ORIGIN/second HTTP/1.1\nHost: ORIGIN\n\n"},
	{name: "bare-cr-in-value", raw: "GET http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nX-A: b\rGET /smuggled HTTP/1.1\r\n\r\n", reject: true},
	{name: "nul-in-value", raw: "GET http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nX-A: b\x00c\r\n\r\n", reject: true},
	{name: "control-in-name", raw: "GET http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nX\x01A: b\r\n\r\n", reject: true},
	{name: "two-hosts", raw: "GET /a HTTP/1.1\r\nHost: ORIGIN\r\nHost: other.example\r\n\r\n", reject: true},
	{name: "chunk-size-garbage", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n0\r\n\r\n"},
	{name: "chunk-size-overflow", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabcd\r\n0\r\n\r\n"},
	{name: "chunk-lf-only", raw: "POST http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\nGET http://ORIGIN/second HTTP/1.1\r\nHost: ORIGIN\r\n\r\n"},
	{name: "pipelined-get-with-body", raw: "GET http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: " + strconv.Itoa(len(smuggledBody)) + "\r\n\r\n" + smuggledBody},
	{name: "space-in-method", raw: "G ET http://ORIGIN/a HTTP/1.1\r\nHost: ORIGIN\r\n\r\n", reject: true},
	{name: "bad-version", raw: "GET http://ORIGIN/a HTTP/1.1x\r\nHost: ORIGIN\r\n\r\n", reject: true},
	{name: "http09", raw: "GET http://ORIGIN/a\r\n\r\n", reject: true},
}

// checkOneToOne asserts the central smuggling property: every request the origin
// parsed completely is one the proxy answered with that origin's response, in order,
// and none carries both framings. Requests the proxy refused never reached it.
func checkOneToOne(t *testing.T, c hostileCase, resps []*http.Response, got []received) {
	t.Helper()
	var answered []string
	rejected := false
	for _, r := range resps {
		b := bodyOf(r)
		if strings.HasPrefix(b, "origin:") {
			answered = append(answered, strings.TrimPrefix(b, "origin:"))
		} else if r.StatusCode == http.StatusNotImplemented || (r.StatusCode >= 400 && r.StatusCode < 500) {
			rejected = true
		}
	}
	var complete []string
	for _, g := range got {
		if g.Method == "" {
			t.Errorf("origin could not parse what the proxy sent: %s", g.Err)
			continue
		}
		if g.Header.Get("Content-Length") != "" && len(g.Header["Transfer-Encoding"]) > 0 {
			t.Errorf("origin received both Content-Length and Transfer-Encoding: %v", g.Header)
		}
		if g.Err != "" { // the proxy aborted a body it could not relay: not answered
			continue
		}
		complete = append(complete, g.Method+" "+g.Target)
	}
	if c.reject && (!rejected || len(got) != 0) {
		t.Errorf("want a 4xx and nothing upstream; responses %v, origin got %v", statuses(resps), got)
	}
	if len(resps) == 0 {
		// The proxy closed without answering: acceptable only if nothing went upstream.
		if len(got) != 0 {
			t.Errorf("proxy answered nothing but the origin received %v", got)
		}
		return
	}
	if strings.Join(complete, "|") != strings.Join(answered, "|") {
		t.Errorf("origin saw %q, client was answered for %q (statuses %v)", complete, answered, statuses(resps))
	}
	for _, a := range complete {
		if strings.Contains(a, "smuggled") {
			t.Errorf("smuggled request reached the origin: %q", a)
		}
	}
}

func statuses(resps []*http.Response) []int {
	var s []int
	for _, r := range resps {
		s = append(s, r.StatusCode)
	}
	return s
}

// TestForwardSmuggling sends each hostile case to the forward door and checks the
// origin received exactly what the proxy answered for.
func TestForwardSmuggling(t *testing.T) {
	p := startProxy(t, loopbackPolicy, nil)
	for _, c := range smugglingCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := startOrigin(t, nil)
			raw := strings.ReplaceAll(c.raw, "ORIGIN", o.addr())
			resps := rawExchange(t, p.fwd(), raw)
			checkOneToOne(t, c, resps, o.requests())
		})
	}
}

// TestForwardOverlongRejected: a request line or header block over the server's
// limit is answered 414/431/400 and never reaches the origin.
func TestForwardOverlongRejected(t *testing.T) {
	p := startProxy(t, loopbackPolicy, nil)
	o := startOrigin(t, nil)
	long := strings.Repeat("a", 2<<20)
	for name, raw := range map[string]string{
		"request-line": "GET http://" + o.addr() + "/" + long + " HTTP/1.1\r\nHost: " + o.addr() + "\r\n\r\n",
		"one-header":   "GET http://" + o.addr() + "/ HTTP/1.1\r\nHost: " + o.addr() + "\r\nX-Big: " + long + "\r\n\r\n",
		"many-headers": "GET http://" + o.addr() + "/ HTTP/1.1\r\nHost: " + o.addr() + "\r\n" + strings.Repeat("X-H: 0123456789012345678901234567890123456789\r\n", 40000) + "\r\n",
	} {
		resps := refusedExchange(t, p.fwd(), raw)
		if len(resps) != 1 || (resps[0].StatusCode != 431 && resps[0].StatusCode != 414 && resps[0].StatusCode != 400) {
			t.Errorf("%s: statuses %v, want one 431/414/400", name, statuses(resps))
		}
	}
	if got := o.requests(); len(got) != 0 {
		t.Errorf("origin received %d requests", len(got))
	}
}

// refusedExchange sends raw while it reads the answers: a server that
// refuses an oversized head answers, reads a bounded amount more and closes,
// so the end of a 2 MiB write may meet a reset (which is no failure here,
// and which would discard the answer if it were read only after the write).
func refusedExchange(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		io.WriteString(c, raw) // a reset after the answer is expected
	}()
	defer func() { c.Close(); <-wrote }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("no answer: %v", err)
		return nil
	}
	resp.Body.Close()
	return []*http.Response{resp}
}

// TestForwardAbsoluteFormWins: the absolute URI decides the destination and the
// origin sees a Host that agrees with it, whatever Host the client sent.
func TestForwardAbsoluteFormWins(t *testing.T) {
	p := startProxy(t, loopbackPolicy, nil)
	o := startOrigin(t, nil)
	resps := rawExchange(t, p.fwd(), "GET http://"+o.addr()+"/abs HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 200 {
		t.Fatalf("statuses %v", statuses(resps))
	}
	got := o.requests()
	if len(got) != 1 || got[0].Host != o.addr() || got[0].Target != "/abs" {
		t.Fatalf("origin got %+v, want Host %s and origin-form /abs", got, o.addr())
	}
}
