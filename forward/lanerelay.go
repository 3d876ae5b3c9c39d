package forward

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/lane"
)

// laneAble reports whether requests under p may be served on the lane at all:
// proxy sign-in, SafeSearch, file-type and phrase checks run only on the
// goproxy path.
func (p *Proxy) laneAble() bool {
	s := p.school.cfg
	return p.auth == nil && p.school.types == nil && p.school.phrases == nil &&
		!s.SafeSearch.Enabled() && len(s.SafeSearchGroups) == 0
}

// serveLane serves r, a request the lane read on lc, with the same decisions
// as ServeHTTP and serveHTTP, or returns laneHandoff having done nothing.
func (p *Proxy) serveLane(lc *laneConn, r *http.Request) laneResult {
	client := clientAddr(r.RemoteAddr)
	if !p.clientAllowed(client) {
		return laneHandoff // net/http refuses it and logs the refusal
	}
	x := &exchange{}
	x.entry = admin.Entry{Time: p.now(), Door: "forward", Client: client, Method: r.Method, Upstream: "direct", URL: requestURL(r)}
	clientHeaders(&x.entry, r)
	resp := p.checkHTTP(x, r)
	if resp != nil {
		lc.lane.answered.Add(1)
		res := lc.relay(x, r, cannedHeader(resp), resp, nil)
		p.finish(x)
		return res
	}
	if x.verdict.Pool != "" || x.verdict.Cache != "" {
		return laneHandoff // the engine's transport sends these through a pool or the cache
	}
	lc.lane.answered.Add(1) // counted before the answer is written, so a client that has it sees it counted
	p.prepareUpstream(x, r)
	stripProxyHeaders(r)
	resp, err := lc.roundTrip(p, r)
	up := lc.up
	if err != nil {
		resp, up = p.upstreamFailure(x, r, err), nil
	}
	p.relayHeaders(x, resp)
	h := resp.Header
	if len(resp.Trailer) > 0 { // announced as goproxy does
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	res := lc.relay(x, r, h, resp, up)
	p.finish(x)
	return res
}

// cannedHeader is the header writeResponse gives a canned response.
func cannedHeader(resp *http.Response) http.Header {
	h := resp.Header
	if resp.ContentLength >= 0 && resp.StatusCode != http.StatusNoContent {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	return h
}

// relay writes resp to the client with header h, framed as net/http's server
// frames what goproxy (or writeResponse) writes through respWriter: status
// line with the standard text, fields sorted, then Date, Content-Length,
// a sniffed Content-Type and Connection: close as the server adds them; a
// body without a length is chunked (an empty one gets Content-Length: 0) and
// trailers follow it. The body is streamed, never gathered. up is the
// upstream connection resp came on (nil: a canned response): it stays kept
// only when the exchange ended cleanly. A body that fails midway cuts the
// client connection, so the client sees a truncated response.
func (lc *laneConn) relay(x *exchange, r *http.Request, h http.Header, resp *http.Response, up *laneUpstream) laneResult {
	status := resp.StatusCode
	isHead := r.Method == http.MethodHead
	bodyOK := bodyAllowed(status)
	closeAfter := r.Close
	clen := int64(-1)
	if cl := h.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			clen = v
		} else {
			h.Del("Content-Length")
		}
	}
	if !bodyOK {
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		if status == http.StatusNotModified {
			h.Del("Content-Type")
		}
	}
	h.Del("Transfer-Encoding") // the lane frames the body itself
	if h.Get("Connection") == "close" {
		closeAfter = true
	}

	// The first piece of the body decides the framing (and a missing
	// Content-Type), as the server's first write does.
	buf := lc.lane.getBuf()
	defer lc.lane.putBuf(buf)
	var n int
	var ended bool
	var rerr error
	sendBody := bodyOK && !isHead && resp.Body != nil
	if sendBody {
		if clen == 0 {
			ended = true
		} else {
			n, ended, rerr = laneBody(resp.Body, buf)
		}
		if clen > 0 && int64(n) > clen {
			n = int(clen)
		}
	} else {
		ended = true
	}
	trailers := len(h["Trailer"]) > 0
	chunked := sendBody && clen < 0 && (n > 0 || !ended || trailers)
	setLen := sendBody && clen < 0 && !chunked

	out := lc.out[:0]
	out = appendStatusLine(out, status)
	out = appendHeader(out, h)
	if _, ok := h["Date"]; !ok {
		out = append(out, "Date: "...)
		out = time.Now().UTC().AppendFormat(out, http.TimeFormat)
		out = append(out, "\r\n"...)
	}
	if setLen {
		out = append(out, "Content-Length: 0\r\n"...)
	}
	if bodyOK && n > 0 {
		if _, ok := h["Content-Type"]; !ok && h.Get("Content-Encoding") == "" {
			out = lane.AppendField(out, "Content-Type", http.DetectContentType(buf[:n]))
		}
	}
	if closeAfter {
		out = append(out, "Connection: close\r\n"...)
	}
	if chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	out = append(out, "\r\n"...)

	written := int64(0)
	ok := true
	for {
		if n > 0 {
			if chunked {
				out = strconv.AppendInt(out, int64(n), 16)
				out = append(out, "\r\n"...)
			}
			out = append(out, buf[:n]...)
			if chunked {
				out = append(out, "\r\n"...)
			}
			written += int64(n)
		}
		if ended || rerr != nil {
			break
		}
		if clen >= 0 && written >= clen {
			ended = true
			break
		}
		if err := lc.write(out); err != nil {
			ok = false
			break
		}
		out = out[:0]
		n, ended, rerr = laneBody(resp.Body, buf)
		if clen >= 0 && written+int64(n) > clen {
			n = int(clen - written)
		}
	}
	if ok && rerr == nil && chunked {
		out = append(out, "0\r\n"...)
		out = appendHeader(out, resp.Trailer)
		out = append(out, "\r\n"...)
	}
	if ok {
		if rerr != nil || (clen >= 0 && sendBody && written < clen) {
			ok = false // cut: the client must not take it for a complete response
			if len(out) > 0 {
				_ = lc.write(out)
			}
		} else if err := lc.write(out); err != nil {
			ok = false
		}
	}
	if len(out) <= 64<<10 {
		lc.out = out[:0]
	} else {
		lc.out = nil
	}
	x.entry.Status = status
	x.entry.BytesOut = written
	if rerr != nil {
		x.entry.Error = "reading the response body: " + rerr.Error()
	}
	if up != nil {
		if ok && ended && rerr == nil && up.reusable(r, resp) {
			up.used = time.Now()
		} else {
			lc.dropUpstream() // before Close, which would drain the rest of the body
		}
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	if !ok || closeAfter {
		return laneClose
	}
	return laneKeep
}

// appendStatusLine appends the status line net/http's server writes for status.
func appendStatusLine(out []byte, status int) []byte {
	out = append(out, "HTTP/1.1 "...)
	if text := http.StatusText(status); text != "" {
		out = strconv.AppendInt(out, int64(status), 10)
		out = append(out, ' ')
		out = append(out, text...)
	} else {
		out = append(out, strconv.Itoa(status + 1000)[1:]...)
		out = append(out, " status code "...)
		out = strconv.AppendInt(out, int64(status), 10)
	}
	return append(out, "\r\n"...)
}

// appendHeader appends h's fields sorted by name, as http.Header.Write does
// (fields with invalid names are dropped, CR and LF in values become spaces).
func appendHeader(out []byte, h http.Header) []byte {
	if len(h) == 0 {
		return out
	}
	var arr [24]string
	keys := arr[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			out = lane.AppendField(out, k, v)
		}
	}
	return out
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
