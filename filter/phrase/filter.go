package phrase

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxScan is how much of a body Filter holds back by default, the
// figure of e2guardian's maxcontentfiltersize (256 KiB).
const DefaultMaxScan = 256 << 10

// Options tune Filter.
type Options struct {
	// Threshold blocks a page whose score is greater than it (e2guardian's
	// naughtynesslimit; its configuration suggests 50 for young children, 100 for
	// older ones, 160 for young adults). There is no default: 0 blocks any
	// page with a positive score.
	Threshold int
	// MaxScan is how many bytes are held back for the decision (default
	// DefaultMaxScan).
	MaxScan int
	// ScanTail keeps scoring the part of a longer body that is streamed after
	// MaxScan; if it crosses the threshold, the stream fails with
	// *LateBlockError, so the proxy aborts the response and the client is left
	// with a truncated page rather than the whole of it.
	ScanTail bool
	// TopHits is how many hits the Decision names (default 5).
	TopHits int
}

// Decision is what Filter concluded from the prefix it held back.
type Decision struct {
	Blocked  bool  // the page must be replaced by the block page
	Score    int   // the score of the scanned part
	Hits     []Hit // the top hits, for the block page and the access log
	Scanned  int   // bytes scanned before deciding
	Complete bool  // the whole body was scanned (it ended within MaxScan)
}

// LateBlockError is returned by the body of a Filter with ScanTail when the
// streamed tail of a page crosses the threshold.
type LateBlockError struct {
	Score int
	Hits  []Hit
}

// Error implements error.
func (e *LateBlockError) Error() string {
	return fmt.Sprintf("phrase: the streamed tail of the page crossed the threshold (score %d)", e.Score)
}

// Filter reads up to opts.MaxScan bytes of body into memory, scoring them,
// and stops early as soon as the page is blocked. Blocked: body is closed and
// the returned ReadCloser is nil; the caller sends the block page instead.
// Passed: the returned ReadCloser yields the body byte for byte (the held
// prefix, then the rest streamed from body) and closes body. A read error
// before the decision is returned as is, with body closed.
//
// The trade-off: deciding on the whole body would catch a phrase anywhere but
// buffer every page whole and delay its first byte until the last arrives;
// deciding on the first MaxScan bytes bounds memory per response and the delay,
// and pages (HTML text) rarely exceed it, but phrases beyond it in a longer
// body are not scored unless ScanTail is set, and then can only cut the page
// short. body must be the decoded body (no Content-Encoding): see Scannable.
// A nil Matcher passes every body untouched.
func Filter(body io.ReadCloser, m *Matcher, opts Options) (Decision, io.ReadCloser, error) {
	if m == nil {
		return Decision{}, body, nil
	}
	if opts.MaxScan <= 0 {
		opts.MaxScan = DefaultMaxScan
	}
	if opts.TopHits <= 0 {
		opts.TopHits = 5
	}
	// The held prefix is kept in fixed blocks, so a page costs its size plus
	// at most one block, with no copying as it grows.
	const block = 32 << 10
	sc := m.NewScanner()
	var held [][]byte
	total := 0
	var d Decision
	for total < opts.MaxScan {
		cur := len(held) - 1
		if cur < 0 || len(held[cur]) == cap(held[cur]) {
			held = append(held, make([]byte, 0, min(block, opts.MaxScan-total)))
			cur++
		}
		b := held[cur]
		n, err := body.Read(b[len(b):cap(b)])
		if n > 0 {
			sc.Write(b[len(b) : len(b)+n])
			held[cur] = b[:len(b)+n]
			total += n
			if sc.Blocked(opts.Threshold) {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			sc.Close()
			d.Complete = true
			break
		}
		if err != nil {
			body.Close()
			return Decision{}, nil, err
		}
	}
	d.Blocked, d.Score, d.Scanned = sc.Blocked(opts.Threshold), sc.Score(), total
	d.Hits = sc.Top(opts.TopHits)
	if d.Blocked {
		body.Close()
		return d, nil, nil
	}
	parts := make([]io.Reader, 0, len(held)+1)
	for _, b := range held {
		parts = append(parts, bytes.NewReader(b))
	}
	switch {
	case d.Complete:
	case opts.ScanTail:
		parts = append(parts, &tailScanner{r: body, sc: sc, opts: opts})
	default:
		parts = append(parts, body)
	}
	return d, &replay{Reader: io.MultiReader(parts...), body: body}, nil
}

// replay is the passed body: the held prefix, then the rest.
type replay struct {
	io.Reader
	body io.Closer
}

func (r *replay) Close() error { return r.body.Close() }

// tailScanner scores the streamed tail and fails once the page is blocked.
type tailScanner struct {
	r    io.Reader
	sc   *Scanner
	opts Options
	err  error
}

func (t *tailScanner) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	t.sc.Write(p[:n])
	if errors.Is(err, io.EOF) {
		t.sc.Close()
	}
	if t.sc.Blocked(t.opts.Threshold) {
		t.err = &LateBlockError{Score: t.sc.Score(), Hits: t.sc.Top(t.opts.TopHits)}
		return 0, t.err
	}
	return n, err
}

// Scannable reports whether a response with header h carries text worth
// scoring that Filter can read as is: Content-Type text/html, text/plain,
// application/xhtml+xml, text/xml, application/xml or application/json (the
// XHR traffic of single-page sites), and no Content-Encoding other than
// identity. Scripts and style sheets are left alone (false positives, as
// e2guardian's users report). A compressed text response returns false: the
// caller decodes it (Decode) to filter it, or refuses it.
func Scannable(h http.Header) bool {
	return Encoding(h) == "" && TextType(h)
}
