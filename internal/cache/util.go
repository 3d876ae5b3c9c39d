package cache

import (
	"github.com/portcullis/portcullis/internal/relay"
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

// stripHop removes hop-by-hop fields, including those named in Connection,
// from h: they are never stored nor merged (RFC 9111 §3.1, RFC 9110 §7.6.1).
// The list is relay's, the one of the whole tree.
func stripHop(h http.Header) { relay.RemoveHopByHop(h) }
