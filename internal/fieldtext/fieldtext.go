// Package fieldtext owns the small pieces of HTTP field syntax (RFC 9110 §5)
// that both ends of the proxy check the same way: the HTTP/1.1 server engine
// (internal/h1) reading clients' requests and the upstream client
// (internal/upstream) reading origins' responses and writing requests, the
// cache checking the field names its directives and configuration name; and
// the doors' read of a field's first value by its canonical key.
package fieldtext

// TrimOWS drops optional whitespace (spaces and tabs) at both ends of s.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// First is a field's first value, as http.Header.Get gives it for a
// canonical key, without canonicalising the key again: First(h["User-Agent"]).
// "" when the field is absent.
func First(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// IsToken reports whether s is a non-empty token (a method or a field
// name): tchars only.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsTokenByte(s[i]) {
			return false
		}
	}
	return true
}

// IsTokenByte reports whether c is a tchar (RFC 9110 §5.6.2).
func IsTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
