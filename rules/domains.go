package rules

import "strings"

// Domains matches host names against a set of domains the way a rule's
// domain: does: a domain matches itself and all its subdomains; a leading
// "*." and a trailing dot are ignored, and case does not matter. The zero
// value matches nothing. Other packages use it so that every `domains:` key
// of the policy means the same thing.
type Domains map[string]bool

// NewDomains builds the matcher of ds (which ValidDomain accepted).
func NewDomains(ds []string) Domains {
	if len(ds) == 0 {
		return nil
	}
	m := make(Domains, len(ds))
	for _, d := range ds {
		m[strings.TrimPrefix(normalizeName(d), "*.")] = true
	}
	return m
}

// Match returns the domain of the set that host is or is under, if any.
// host must be lower case without a trailing dot (as in Facts.Host).
func (m Domains) Match(host string) (domain string, ok bool) {
	if len(m) == 0 || host == "" {
		return "", false
	}
	for h := host; ; {
		if m[h] {
			return h, true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return "", false
		}
		h = h[i+1:]
	}
}

// ValidDomain reports whether d is a domain a rule's domain: accepts.
func ValidDomain(d string) bool { return validName(strings.TrimPrefix(normalizeName(d), "*.")) }
