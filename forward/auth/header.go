package auth

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// ParseProxyAuthorization returns the user and password of a
// "Proxy-Authorization: Basic base64(user:pass)" header in h (scheme
// case-insensitive, per RFC 7617). ok is false when the header is missing, uses
// another scheme, is not valid base64, has no colon or has an empty user.
func ParseProxyAuthorization(h http.Header) (user, pass string, ok bool) {
	v := strings.TrimSpace(h.Get("Proxy-Authorization"))
	const prefix = "basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := strings.TrimSpace(v[len(prefix):])
	var buf [192]byte // decodes usual credentials without a heap buffer
	raw := buf[:]
	if n := base64.StdEncoding.DecodedLen(len(enc)); n > len(raw) {
		raw = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(raw, []byte(enc))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw[:n]), ":")
	if !ok || user == "" {
		return "", "", false
	}
	return user, pass, true
}

// Challenge returns the headers of a 407 Proxy Authentication Required
// response: Proxy-Authenticate: Basic realm="REALM", charset="UTF-8". Quotes,
// backslashes and control characters in realm are escaped or dropped so the
// header stays well formed; an empty realm becomes "Portcullis".
func Challenge(realm string) http.Header {
	if realm == "" {
		realm = "Portcullis"
	}
	var b strings.Builder
	for _, r := range realm {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	h := make(http.Header, 1)
	h.Set("Proxy-Authenticate", `Basic realm="`+b.String()+`", charset="UTF-8"`)
	return h
}
