// Package filter owns compiled matchers and lists: the compact domain-suffix index,
// glob sets, CIDR sets, the list file formats (domains, hosts, adblock, UT1 category
// folders), the block page, and response checks. Everything here is parsed once and
// matched on the hot path without allocation.
package filter

// Matcher answers whether a host (lowercased, no port, no trailing dot) is listed.
type Matcher interface {
	Match(host string) bool
}
