package relay

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// IsHopByHop reports whether the canonical field name is one of the fixed
// hop-by-hop fields, removed from every message a proxy forwards (RFC 9110
// §7.6.1 and the fields Go's httputil removes); fields named by a message's
// Connection are hop-by-hop too, for that message only. Its switch is the
// one list of the tree:
//
//	Connection          and every field it names
//	Keep-Alive
//	Proxy-Connection    non-standard, still sent by browsers and libcurl
//	Proxy-Authenticate
//	Proxy-Authorization
//	Proxy-Authentication-Info
//	Te                  "TE: trailers" is kept
//	Trailer
//	Transfer-Encoding
//	Upgrade             kept by RemoveHopByHopKeepUpgrade when relaying an upgrade
func IsHopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authentication-Info",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// RemoveHopByHop removes the hop-by-hop fields from h: Connection and every field
// named in it, Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authentication-Info,
// Proxy-Authorization,
// TE, Trailer, Transfer-Encoding and Upgrade. When the client's TE listed "trailers",
// "TE: trailers" is set again (the next hop may then send trailers, which Serve
// relays). Use it on requests and responses alike.
func RemoveHopByHop(h http.Header) {
	removeHopByHop(h, false)
}

// RemoveHopByHopKeepUpgrade is RemoveHopByHop for a request or a 101 response that
// the caller relays as a protocol upgrade (WebSocket, h2c): when h carries Upgrade
// and its Connection lists "upgrade", the result keeps "Connection: Upgrade" and the
// original Upgrade value; every other hop-by-hop field is removed.
func RemoveHopByHopKeepUpgrade(h http.Header) {
	removeHopByHop(h, true)
}

func removeHopByHop(h http.Header, keepUpgrade bool) {
	if len(h) == 0 {
		return
	}
	var upgrade []string
	if keepUpgrade && httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		upgrade = h["Upgrade"]
	}
	teTrailers := httpguts.HeaderValuesContainsToken(h["Te"], "trailers")
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			switch name = textproto.TrimString(name); {
			case name == "":
			case strings.EqualFold(name, "close"):
				delete(h, "Close") // as h.Del, without making the canonical name
			case strings.EqualFold(name, "keep-alive"):
				delete(h, "Keep-Alive")
			default:
				h.Del(name)
			}
		}
	}
	for k := range h { // one pass: no hashed delete of names that are not there
		if IsHopByHop(k) {
			delete(h, k)
		}
	}
	if teTrailers {
		h["Te"] = []string{"trailers"}
	}
	if len(upgrade) > 0 {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = upgrade
	}
}

// upgradeType returns the protocol h asks to upgrade to ("" when its
// Connection does not list "upgrade").
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}
