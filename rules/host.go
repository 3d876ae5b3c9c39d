package rules

import (
	"strconv"
	"strings"
)

// SplitHostPort splits a request authority ("Example.COM.:8080", "[::1]:443",
// "host") into the Facts form of its host — lowercased, no trailing dot, IPv6
// without brackets — and its port (0 when absent or not a number). It allocates
// only when the host needs lowercasing. Every door builds Facts.Host with it.
func SplitHostPort(authority string) (host string, port uint16) {
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
