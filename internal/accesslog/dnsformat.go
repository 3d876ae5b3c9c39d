package accesslog

import (
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS queries in the HTTP-shaped formats (combined, squid).
//
// Both formats were made for HTTP, and their analysers check the shape of each field:
// Calamaris wants exactly ten squid fields and a timestamp of the form 123.456; GoAccess
// rejects a status outside 100-599 and AWStats one that is not digits; SARG's denied
// report looks for "DENIED/403"; Squid's own ParseLog.pm and netdata want digits after
// the result code's slash. So a DNS line keeps every field's type and says what DNS
// facts it carries where (documented in docs/operations.md, "Access logs"):
//
//   - status: the rcode as the nearest HTTP status: NOERROR 200, FORMERR and BADVERS 400,
//     REFUSED 403, NXDOMAIN 404, NOTIMP 501, SERVFAIL 502, any other 500; a blocked query
//     is 403 whatever it was answered (NXDOMAIN or the null address).
//   - method: the query type (A, AAAA, HTTPS…), as Squid logs ICP_QUERY for ICP.
//   - URL: dns://NAME/?rcode=RCODE&proto=udp|tcp[&rule=RULE]: the name as the host (so
//     the analysers' per-site reports group DNS with HTTP for the same host), the exact
//     rcode name, the transport and the deciding rule in the query. Everything outside
//     RFC 3986's unreserved characters is %-encoded, so the URL is one token; the root
//     name is ".". These values are the query's, not a user's: strip_query keeps them.
//   - bytes: the size of the DNS reply sent (the whole message).

// dnsMediaType is the content type of a squid DNS line: a DNS message (RFC 8484).
const dnsMediaType = "application/dns-message"

// appendSquidDNS writes a DNS query in Squid's native format, the ten fields of
// appendSquid:
//
//	time elapsed client RESULT/STATUS bytes QTYPE dns://NAME/?rcode=R&proto=P[&rule=X] user HIER/- application/dns-message
//
// RESULT is TCP_DENIED for a query the policy blocked or the server refused, TCP_HIT for
// an answer from the resolver's cache, TCP_MISS otherwise (Squid's TCP_ prefix names its
// HTTP port, UDP_ its ICP one; Calamaris counts only TCP_…HIT as hits, so TCP_ is used
// for UDP too, and the transport is in the URL). The hierarchy is HIER_DIRECT/- for a
// query forwarded to the upstream resolvers (which one answered is not known here),
// HIER_NONE/- for one answered here (cache, block, GSLB, SafeSearch). Example:
//
//	1795684530.251      1 10.1.2.3 TCP_DENIED/403 45 A dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp&rule=no-ads - HIER_NONE/- application/dns-message
func appendSquidDNS(b []byte, e *Entry) []byte {
	b = appendSquidHead(b, e)
	b = append(b, dnsSquidResult(e)...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(dnsHTTPStatus(e)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, ' ')
	b = appendSquidField(b, e.Method, "")
	b = append(b, ' ')
	b = appendDNSURL(b, e)
	b = append(b, ' ')
	b = appendSquidField(b, e.User, "")
	b = append(b, ' ')
	if forwarded(e) {
		b = append(b, "HIER_DIRECT/- "...)
	} else {
		b = append(b, "HIER_NONE/- "...)
	}
	b = append(b, dnsMediaType...)
	return append(b, '\n')
}

// appendCombinedDNS writes a DNS query in the combined format, with the query's duration
// after the user agent (as Squid's own combined format adds its codes there, and nginx
// users $request_time; GoAccess and AWStats ignore what follows the user agent):
//
//	client - user [time] "QTYPE dns://NAME/?rcode=R&proto=P[&rule=X] DNS" STATUS bytes "-" "-" 1.234ms
//
// The request line's method is the query type, which no web analyser takes for HTTP:
// AWStats drops the line as "not qualified" (not corrupted), GoAccess keeps the whole
// request line as the requested resource. Example:
//
//	10.1.2.3 - - [26/Nov/2026:09:15:30 +0000] "A dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp&rule=no-ads DNS" 403 45 "-" "-" 1.234ms
func appendCombinedDNS(b []byte, e *Entry) []byte {
	b = appendCombinedHead(b, e)
	if e.Method == "" {
		b = append(b, '-')
	} else {
		b = appendBare(b, e.Method)
	}
	b = append(b, ' ')
	b = appendDNSURL(b, e)
	b = append(b, ` DNS" `...)
	b = strconv.AppendInt(b, int64(dnsHTTPStatus(e)), 10)
	b = append(b, ' ')
	if e.BytesOut > 0 {
		b = strconv.AppendInt(b, e.BytesOut, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ` "-" "-" `...)
	b = strconv.AppendFloat(b, float64(e.Duration)/float64(time.Millisecond), 'f', 3, 64)
	return append(b, "ms\n"...)
}

// appendDNSURL appends dns://NAME/?rcode=RCODE[&proto=PROTO][&rule=RULE].
func appendDNSURL(b []byte, e *Entry) []byte {
	b = append(b, "dns://"...)
	if name := strings.TrimSuffix(e.URL, "."); name == "" {
		b = append(b, '.')
	} else {
		b = appendUnreserved(b, name)
	}
	b = append(b, "/?rcode="...)
	b = appendRcode(b, e.Status)
	if e.Proto != "" {
		b = append(b, "&proto="...)
		b = appendUnreserved(b, e.Proto)
	}
	if e.Rule != "" {
		b = append(b, "&rule="...)
		b = appendUnreserved(b, e.Rule)
	}
	return b
}

// appendUnreserved appends s with every byte outside RFC 3986's unreserved set
// (letters, digits, "-._~") %-encoded.
func appendUnreserved(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
	}
	return b
}

const upperHex = "0123456789ABCDEF"

// appendRcode appends the rcode's name, or RCODEn for one without a name.
func appendRcode(b []byte, rcode int) []byte {
	if s := RcodeName(rcode); s != "" {
		return append(b, s...)
	}
	b = append(b, "RCODE"...)
	return strconv.AppendInt(b, int64(rcode), 10)
}

// rcodeName is the rcode's mnemonic, "" when it has none. 16 is BADVERS: the server
// signs nothing, so it never means BADSIG here.
// RcodeName is the DNS response code's name ("NOERROR", "NXDOMAIN", "BADVERS"), "" when unknown.
func RcodeName(rcode int) string {
	if rcode == dns.RcodeBadVers {
		return "BADVERS"
	}
	return dns.RcodeToString[rcode]
}

// dnsHTTPStatus maps a DNS entry to the HTTP status its line carries.
func dnsHTTPStatus(e *Entry) int {
	if e.Denied() {
		return 403
	}
	switch e.Status {
	case dns.RcodeSuccess:
		return 200
	case dns.RcodeFormatError, dns.RcodeBadVers:
		return 400
	case dns.RcodeRefused:
		return 403
	case dns.RcodeNameError:
		return 404
	case dns.RcodeNotImplemented:
		return 501
	case dns.RcodeServerFailure:
		return 502
	}
	return 500
}

// dnsSquidResult maps a DNS entry to Squid's result code.
func dnsSquidResult(e *Entry) string {
	switch {
	case e.Denied() || e.Status == dns.RcodeRefused:
		return "TCP_DENIED"
	case e.Cache == "hit":
		return "TCP_HIT"
	}
	return "TCP_MISS"
}

// forwarded reports whether a DNS query went to the upstream resolvers.
func forwarded(e *Entry) bool {
	return e.Upstream == "resolver" && e.Cache != "hit" && !e.Denied() && e.Status != dns.RcodeRefused
}
