package rules

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/filter"
)

// SplitHostPort splits a request authority ("Example.COM.:8080", "[::1]:443",
// "host") into the Facts form of its host and its port (0 when absent or not a
// number): the CanonicalAuthority form when the authority normalises, else
// (for the doors that route rather than dial, such as the reverse door's Host
// header) lowercased, no trailing dot, IPv6 without brackets. It allocates
// only when the host needs changing. Doors that dial the host use
// CanonicalAuthority and refuse what does not normalise.
func SplitHostPort(authority string) (host string, port uint16) {
	if h, p, err := CanonicalAuthority(authority); err == nil {
		return h, p
	}
	host, portStr := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && strings.IndexByte(authority[i:], ']') < 0 {
		host, portStr = authority[:i], authority[i+1:]
	}
	host = NormalizeName(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if portStr != "" {
		if n, err := strconv.ParseUint(portStr, 10, 16); err == nil {
			port = uint16(n)
		}
	}
	return host, port
}

// NormalizeName lowercases a host name and drops one trailing dot, allocating only
// when something changes.
func NormalizeName(host string) string {
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// CanonicalAuthority is the one host form every decision is taken on. It
// splits a request authority ("Example.COM:8080", "[::ffff:10.0.0.1]:443",
// "ｂｌｏｃｋｅｄ.test") into its canonical host — UTS #46 lookup mapping to
// the ASCII (punycode) form, lowercased, one trailing dot dropped, IP literals
// in canonical notation with IPv4-mapped IPv6 read as IPv4, no brackets (see
// filter.NormalizeHost) — and its port (0 when absent). What does not
// normalise (two trailing dots, empty labels, "0x7f.1", a bad port, anything
// IDNA refuses) is an error wrapping filter.ErrInvalidHost: the door refuses
// the request instead of guessing how the resolver would read it. The door
// then sends the request to, and dials, exactly the host returned (see
// JoinAuthority). An already canonical ASCII host costs no allocation.
func CanonicalAuthority(authority string) (host string, port uint16, err error) {
	if upperASCII(authority) {
		// For ASCII, UTS #46 mapping is lower-casing: one allocation here
		// instead of the IDNA machinery.
		authority = strings.ToLower(authority)
	}
	host, err = filter.NormalizeHost(authority)
	if err != nil {
		return "", 0, err
	}
	var p string
	if strings.HasPrefix(authority, "[") {
		p = authority[strings.IndexByte(authority, ']')+1:]
	} else if i := strings.IndexByte(authority, ':'); i >= 0 && strings.IndexByte(authority[i+1:], ':') < 0 {
		p = authority[i:]
	}
	if p != "" { // ":1" to ":65535", checked by NormalizeHost
		n, _ := strconv.ParseUint(p[1:], 10, 16)
		port = uint16(n)
	}
	return host, port, nil
}

// CanonicalName is CanonicalAuthority for a bare name, such as a TLS server
// name: a name with a port or brackets is an error.
func CanonicalName(name string) (string, error) {
	if strings.ContainsAny(name, ":[]") {
		return "", fmt.Errorf("%w %q: a server name has no port", filter.ErrInvalidHost, name)
	}
	return filter.NormalizeHost(name)
}

// JoinAuthority is the authority a request for the canonical host and port is
// sent to: "host:port", "[v6]:port", or host alone when port is 0. It returns
// authority itself (no allocation) when that already reads so.
func JoinAuthority(authority, host string, port uint16) string {
	if port == 0 {
		if strings.IndexByte(host, ':') < 0 {
			return host
		}
		if len(authority) == len(host)+2 && authority[0] == '[' && authority[1:len(authority)-1] == host {
			return authority
		}
		return "[" + host + "]"
	}
	if len(authority) > len(host) && authority[:len(host)] == host && authority[len(host)] == ':' {
		if n, err := strconv.ParseUint(authority[len(host)+1:], 10, 16); err == nil && uint16(n) == port && authority[len(host)+1] != '0' {
			return authority
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// upperASCII reports whether s is all ASCII with at least one upper-case letter.
func upperASCII(s string) bool {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return false
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	return upper
}
