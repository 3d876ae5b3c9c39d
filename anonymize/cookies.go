package anonymize

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sessionOnly returns the Set-Cookie value sc without its Expires and Max-Age
// attributes, every other byte kept. A deletion (Max-Age <= 0, or an Expires not
// after now) is returned unchanged: making it a session cookie would resurrect it.
// It allocates only when it removes something.
func sessionOnly(sc string, now time.Time) string {
	pair, attrs, ok := strings.Cut(sc, ";")
	if !ok {
		return sc
	}
	found := false
	for attr := range strings.SplitSeq(attrs, ";") {
		name, value := attribute(attr)
		switch {
		case strings.EqualFold(name, "max-age"):
			found = true
			if n, err := strconv.Atoi(value); err != nil || n <= 0 {
				return sc
			}
		case strings.EqualFold(name, "expires"):
			found = true
			if t, err := http.ParseTime(value); err == nil && !t.After(now) {
				return sc
			}
		}
	}
	if !found {
		return sc
	}
	var b strings.Builder
	b.Grow(len(sc))
	b.WriteString(pair)
	for attr := range strings.SplitSeq(attrs, ";") {
		if name, _ := attribute(attr); strings.EqualFold(name, "max-age") || strings.EqualFold(name, "expires") {
			continue
		}
		b.WriteByte(';')
		b.WriteString(attr)
	}
	return b.String()
}

// attribute splits one cookie attribute ("  Max-Age=60 ") into its trimmed name and value.
func attribute(attr string) (name, value string) {
	name, value, _ = strings.Cut(attr, "=")
	return strings.TrimSpace(name), strings.TrimSpace(value)
}

// applySessionOnly rewrites every Set-Cookie in h to a session cookie.
func applySessionOnly(h http.Header, now time.Time) {
	vs := h["Set-Cookie"]
	for i, sc := range vs {
		vs[i] = sessionOnly(sc, now)
	}
}
