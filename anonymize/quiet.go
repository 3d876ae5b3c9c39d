package anonymize

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// transparentGIF is the smallest valid 1×1 transparent GIF (43 bytes).
const transparentGIF = "GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00" +
	"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"

// QuietResponse returns the response for a request to a tracker that a profile
// blocks quietly (rules.Verdict.Quiet): no block page, but what the page expects
// of that kind of resource, so that it neither breaks nor retries. The kind is
// read from Sec-Fetch-Dest, else from Accept:
//
//	image            200, a 1×1 transparent GIF
//	script           200, empty text/javascript
//	style            200, empty text/css
//	document, frame  200, empty text/html
//	anything else    204 (beacons, pings, fetch/XHR)
//
// Every response is marked Cache-Control: no-store. The door relays it as it would
// an origin's response (resp.Request is r).
func QuietResponse(r *http.Request) *http.Response {
	status, ctype, body := http.StatusNoContent, "", ""
	switch quietKind(r.Header) {
	case "image":
		status, ctype, body = http.StatusOK, "image/gif", transparentGIF
	case "script":
		status, ctype = http.StatusOK, "text/javascript"
	case "style":
		status, ctype = http.StatusOK, "text/css"
	case "document":
		status, ctype = http.StatusOK, "text/html; charset=utf-8"
	}
	h := http.Header{"Cache-Control": {"no-store"}}
	resp := &http.Response{
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode: status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  h,
		Body:    http.NoBody,
		Request: r,
	}
	if ctype != "" {
		h["Content-Type"] = []string{ctype}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		resp.ContentLength = int64(len(body))
		if body != "" {
			resp.Body = io.NopCloser(strings.NewReader(body))
		}
	}
	return resp
}

// quietKind classifies the requested resource: image, script, style, document or "".
func quietKind(h http.Header) string {
	switch dest := h.Get("Sec-Fetch-Dest"); dest {
	case "image":
		return "image"
	case "script", "worker", "sharedworker", "serviceworker", "audioworklet", "paintworklet":
		return "script"
	case "style":
		return "style"
	case "document", "iframe", "frame", "embed", "object":
		return "document"
	case "":
	default:
		return "" // empty, audio, video, font, manifest, report, …: nothing to stand in
	}
	accept := h.Get("Accept")
	switch {
	case strings.HasPrefix(accept, "image/"):
		return "image"
	case strings.HasPrefix(accept, "text/css"):
		return "style"
	case strings.HasPrefix(accept, "text/html"):
		return "document"
	case strings.Contains(accept, "javascript") || strings.Contains(accept, "ecmascript"):
		return "script"
	}
	return ""
}
