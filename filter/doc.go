// Package filter owns compiled matchers and lists: the compact domain-suffix index,
// glob sets, CIDR sets, the list file formats (domains, hosts, adblock, UT1 category
// folders), the block page, and response checks. Everything here is parsed once and
// matched on the hot path without allocation.
//
// Lists: LoadList reads one list file (or UT1 category folder) into a *List,
// parsing domains files in blocks on two goroutines; LoadCategories reads a whole
// UT1 folder. Malformed lines are skipped and reported (List.Problems), never
// fatal. A List's domains live in a DomainSet: a pointer-free, front-coded index
// of reversed keys grouped by family (the last two labels) and laid out by hash,
// that answers "is this host or a parent domain listed" with one random memory
// access through a cache-resident bucket index, and holds millions of entries at
// about 21 bytes each without adding to garbage-collection work. Hosts are matched in the form
// NormalizeHost gives them (lowercase ASCII, no port, no trailing dot).
//
// Patterns: GlobSet (host globs, '.' separator), PathGlobSet (path globs, '/'
// separator) and CIDRSet (client or destination addresses).
package filter

// Matcher answers whether a host (lowercased, no port, no trailing dot) is listed.
type Matcher interface {
	Match(host string) bool
}
