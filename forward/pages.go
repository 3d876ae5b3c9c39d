package forward

import (
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/filter"
)

// pageBody renders the short proxy-generated page for status with message msg, as
// HTML or plain text depending on the client's Accept header. msg is a fixed
// sentence from this package, never error text.
func pageBody(status int, msg string, htmlOK bool) (body, ctype string) {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	if !htmlOK {
		return title + "\n\n" + msg + "\n\n(Portcullis proxy)\n", "text/plain; charset=utf-8"
	}
	var sb strings.Builder
	sb.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
	sb.WriteString(html.EscapeString(title))
	sb.WriteString("</title></head>\n<body style=\"font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:10vh auto\">\n<h1>")
	sb.WriteString(html.EscapeString(title))
	sb.WriteString("</h1>\n<p>")
	sb.WriteString(html.EscapeString(msg))
	sb.WriteString("</p>\n<p style=\"color:#666\">Portcullis proxy</p>\n</body></html>\n")
	return sb.String(), "text/html; charset=utf-8"
}

// page writes a short proxy page to w.
func (p *Proxy) page(w http.ResponseWriter, r *http.Request, status int, msg string) {
	body, ctype := pageBody(status, msg, filter.AcceptsHTML(r.Header.Get("Accept")))
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

// pageResponse is page as an *http.Response, for the checks that answer
// before a request is relayed (checkHTTP, tunnelAuthority, upstreamFailure).
func (p *Proxy) pageResponse(r *http.Request, status int, msg string) *http.Response {
	htmlOK := r != nil && filter.AcceptsHTML(r.Header.Get("Accept"))
	body, ctype := pageBody(status, msg, htmlOK)
	h := make(http.Header, 3)
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: int64(len(body)),
		Body: io.NopCloser(strings.NewReader(body)), Request: r,
	}
}

// notProxyRequest answers a relative-URL request to the proxy port when no Local
// handler is configured.
func (p *Proxy) notProxyRequest(w http.ResponseWriter, r *http.Request) {
	p.page(w, r, http.StatusNotFound, "This is a proxy server. Point your browser's proxy settings at this address instead of opening it.")
}
