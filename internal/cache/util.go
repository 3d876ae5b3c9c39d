package cache

import (
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/portcullis/portcullis/internal/config/field"
)

func itoa(i int) string { return strconv.Itoa(i) }

// canonical returns the canonical form of a header name.
func canonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func fieldErrors(errs []field.Error) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// hopHeaders are never stored nor merged (RFC 9111 §3.1, RFC 9110 §7.6.1).
var hopHeaders = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization",
}

// stripHop removes hop-by-hop fields, including those named in Connection, from h.
func stripHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range splitList(v) {
			h.Del(name)
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}
