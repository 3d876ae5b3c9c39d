package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalidHost is wrapped by every error NormalizeHost returns.
var ErrInvalidHost = errors.New("invalid host")

// hostProfile is IDNA 2008 lookup processing (UTS #46, non-transitional)
// that still accepts what real host names hold: underscores and hyphens at
// label edges.
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
	idna.VerifyDNSLength(true),
)

// NormalizeHost returns the canonical form under which hosts are matched:
// lowercased, port and IPv6 brackets removed, one trailing dot removed,
// internationalised names converted to their ASCII (punycode) form, and IP
// literals in canonical notation ("::ffff:10.0.0.1" becomes "10.0.0.1",
// "[2001:DB8::0:1]:443" becomes "2001:db8::1"). It rejects, wrapping
// ErrInvalidHost: empty input, bad ports, empty labels, IPv6 zones, names
// whose last label is numeric but are no dotted-quad IPv4 address (browsers
// read "127.1" or "0x7f.1" as addresses), and anything IDNA refuses. An
// already canonical host is returned as is, without allocating.
func NormalizeHost(s string) (string, error) {
	host, err := splitHostPort(s)
	if err != nil {
		return "", err
	}
	if strings.IndexByte(host, ':') >= 0 {
		return normalizeIP(s, host, true)
	}
	if strings.HasSuffix(host, ".") {
		host = host[:len(host)-1]
	}
	if host == "" {
		return "", invalidHost(s, "empty host")
	}
	if !isCanonicalASCII(host) || strings.Contains(host, "xn--") {
		// Not yet ASCII, or punycode labels to validate.
		if !utf8.ValidString(host) {
			return "", invalidHost(s, "not UTF-8")
		}
		ascii, err := hostProfile.ToASCII(host)
		if err != nil {
			return "", invalidHost(s, err.Error())
		}
		if !isCanonicalASCII(ascii) {
			return "", invalidHost(s, "not a host name")
		}
		if ascii != host {
			// The output must itself be valid: punycode that decodes
			// to something IDNA refuses is garbage.
			if again, err := hostProfile.ToASCII(ascii); err != nil || again != ascii {
				return "", invalidHost(s, "not a stable IDNA name")
			}
		}
		host = ascii
	}
	if last := host[strings.LastIndexByte(host, '.')+1:]; numericLabel(last) {
		return normalizeIP(s, host, false)
	}
	return host, nil
}

// splitHostPort removes a port and IPv6 brackets.
func splitHostPort(s string) (string, error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", invalidHost(s, "missing ]")
		}
		if err := checkPort(s, s[end+1:]); err != nil {
			return "", err
		}
		if strings.IndexByte(s[1:end], ':') < 0 {
			return "", invalidHost(s, "brackets around a non-IPv6 host")
		}
		return s[1:end], nil
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		if err := checkPort(s, s[i:]); err != nil {
			return "", err
		}
		return s[:i], nil
	}
	return s, nil // no port, or a bare IPv6 literal
}

// checkPort accepts "" or ":1".. ":65535".
func checkPort(s, p string) error {
	if p == "" {
		return nil
	}
	if p[0] != ':' || len(p) < 2 || len(p) > 6 {
		return invalidHost(s, "bad port")
	}
	n := 0
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return invalidHost(s, "bad port")
		}
		n = n*10 + int(p[i]-'0')
	}
	if n == 0 || n > 65535 {
		return invalidHost(s, "bad port")
	}
	return nil
}

func normalizeIP(s, host string, v6 bool) (string, error) {
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || v6 != a.Is6() {
		return "", invalidHost(s, "not an IP address")
	}
	var buf [64]byte
	if b := a.Unmap().AppendTo(buf[:0]); string(b) != host {
		return string(b), nil
	}
	return host, nil // already canonical: no allocation
}

// isCanonicalASCII reports whether h is already lowercase ASCII made of
// host-name bytes with non-empty labels of at most 63 bytes.
func isCanonicalASCII(h string) bool {
	if len(h) == 0 || len(h) > MaxDomainLen {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c == '.' {
			if label == 0 {
				return false
			}
			label = 0
			continue
		}
		if c == ':' || !domainByte(c) {
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// numericLabel reports whether a label reads as a number to a URL parser
// (decimal, or 0x hexadecimal), which makes the whole host an IPv4 address.
func numericLabel(l string) bool {
	if strings.HasPrefix(l, "0x") {
		l = l[2:]
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return l != ""
}

func invalidHost(s, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidHost, s, why)
}
