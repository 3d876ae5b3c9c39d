package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/fieldtext"
)

// maxDelta is what RFC 9111 §1.2.2 says to use for delta-seconds too large to
// represent: 2^31 seconds.
const maxDelta = time.Duration(1<<31) * time.Second

// respCC is a response's parsed Cache-Control (RFC 9111 §5.2.2, RFC 5861).
// A duration of -1 means "absent"; invalid values make the response stale
// (§4.2.1 encourages that), which is recorded as 0.
type respCC struct {
	maxAge, sMaxAge      time.Duration
	swr, sie             time.Duration
	public               bool
	noStore              bool
	mustRevalidate       bool
	proxyRevalidate      bool
	mustUnderstand       bool
	noCacheFields        []string // qualified no-cache: canonical names
	privateFields        []string // qualified private: canonical names
	unqualifiedNoCache   bool     // no-cache without fields: validate every time
	unqualifiedPrivate   bool     // private without fields: never stored
	invalidFreshnessInfo bool     // e.g. max-age=abc: treat as stale (§4.2.1)
}

// no-transform needs nothing: this cache never transforms content. immutable
// needs nothing in a shared cache (it concerns user agents' reloads).

// reqCC is a request's parsed Cache-Control (RFC 9111 §5.2.1).
type reqCC struct {
	maxAge, maxStale, minFresh, sie time.Duration // -1 when absent
	maxStaleAny                     bool          // max-stale without a value
	noCache, noStore, onlyIfCached  bool
}

// directive calls fn for each directive of the Cache-Control field lines, with a
// lower-cased name and an unquoted value; quoted says whether it was quoted.
func directives(lines []string, fn func(name, value string, hasValue, quoted bool)) {
	for _, line := range lines {
		for len(line) > 0 {
			line = strings.TrimLeft(line, " \t,")
			if line == "" {
				break
			}
			i := 0
			for i < len(line) && line[i] != '=' && line[i] != ',' {
				i++
			}
			raw := strings.TrimRight(line[:i], " \t")
			name := strings.ToLower(raw)
			line = line[i:]
			if line == "" || line[0] == ',' {
				fn(name, "", false, false)
				continue
			}
			if len(raw) != i {
				// "max-age =5": no whitespace is allowed around '=' (RFC 9111
				// §5.2), so this is not a directive this cache knows.
				name = "!" + name
			}
			line = line[1:] // skip '='; a value starting with space is invalid
			var value string
			quoted := false
			if line != "" && line[0] == '"' {
				quoted = true
				var b strings.Builder
				j := 1
				for ; j < len(line) && line[j] != '"'; j++ {
					if line[j] == '\\' && j+1 < len(line) {
						j++
					}
					b.WriteByte(line[j])
				}
				value = b.String()
				if j < len(line) {
					j++
				}
				line = line[j:]
				if k := strings.IndexByte(line, ','); k >= 0 {
					line = line[k:]
				} else {
					line = ""
				}
			} else {
				k := strings.IndexByte(line, ',')
				if k < 0 {
					k = len(line)
				}
				value = strings.TrimRight(line[:k], " \t")
				line = line[k:]
			}
			fn(name, value, true, quoted)
		}
	}
}

// parseDelta parses delta-seconds; ok is false when s is not one.
func parseDelta(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n >= 1<<31 {
		return maxDelta, true
	}
	return time.Duration(n) * time.Second, true
}

func fieldNames(v string) []string {
	var out []string
	for _, n := range splitList(v) {
		if fieldtext.IsToken(n) {
			out = append(out, canonical(n))
		}
	}
	return out
}

// parseRespCC parses the response's caching directives: CDN-Cache-Control
// (RFC 9213, targeted at caches like this one) when present, else
// Cache-Control.
func parseRespCC(h http.Header) respCC {
	lines := h["Cache-Control"]
	if t := h["Cdn-Cache-Control"]; len(t) > 0 && strings.TrimSpace(strings.Join(t, "")) != "" {
		lines = t
	}
	cc := respCC{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}
	seen := map[string]bool{}
	directives(lines, func(name, value string, hasValue, quoted bool) {
		first := !seen[name]
		seen[name] = true
		delta := func(dst *time.Duration) {
			if !first {
				return // RFC 9111 §4.2.1: use the first occurrence
			}
			if d, ok := parseDelta(value); ok && !quoted {
				*dst = d
			} else {
				*dst = 0
				cc.invalidFreshnessInfo = true
			}
		}
		switch name {
		case "max-age":
			delta(&cc.maxAge)
		case "s-maxage":
			delta(&cc.sMaxAge)
		case "stale-while-revalidate":
			if d, ok := parseDelta(value); ok && first {
				cc.swr = d
			}
		case "stale-if-error":
			if d, ok := parseDelta(value); ok && first {
				cc.sie = d
			}
		case "public":
			cc.public = true
		case "private":
			if hasValue {
				cc.privateFields = append(cc.privateFields, fieldNames(value)...)
			} else {
				cc.unqualifiedPrivate = true
			}
		case "no-cache":
			if hasValue {
				cc.noCacheFields = append(cc.noCacheFields, fieldNames(value)...)
			} else {
				cc.unqualifiedNoCache = true
			}
		case "no-store":
			cc.noStore = true
		case "must-revalidate":
			cc.mustRevalidate = true
		case "proxy-revalidate":
			cc.proxyRevalidate = true
		case "must-understand":
			cc.mustUnderstand = true
		}
	})
	return cc
}

// revalidateStrict reports whether the response forbids serving it stale without
// validation in a shared cache (must-revalidate, proxy-revalidate, s-maxage).
func (cc *respCC) revalidateStrict() bool {
	return cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0
}

// authOK reports whether a response may be stored for, or reused by, a request
// carrying Authorization (RFC 9111 §3.5).
func (cc *respCC) authOK() bool {
	return cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate
}

func parseReqCC(h http.Header) reqCC {
	cc := reqCC{maxAge: -1, maxStale: -1, minFresh: -1, sie: -1}
	lines := h["Cache-Control"]
	if len(lines) == 0 {
		// RFC 9111 §5.4: Pragma: no-cache counts only without Cache-Control.
		for _, p := range h["Pragma"] {
			for _, d := range splitList(p) {
				if strings.EqualFold(d, "no-cache") {
					cc.noCache = true
				}
			}
		}
		return cc
	}
	directives(lines, func(name, value string, hasValue, _ bool) {
		switch name {
		case "max-age":
			if d, ok := parseDelta(value); ok && cc.maxAge < 0 {
				cc.maxAge = d
			}
		case "max-stale":
			if !hasValue {
				cc.maxStaleAny = true
			} else if d, ok := parseDelta(value); ok && cc.maxStale < 0 {
				cc.maxStale = d
			}
		case "min-fresh":
			if d, ok := parseDelta(value); ok && cc.minFresh < 0 {
				cc.minFresh = d
			}
		case "stale-if-error":
			if d, ok := parseDelta(value); ok && cc.sie < 0 {
				cc.sie = d
			}
		case "no-cache":
			cc.noCache = true
		case "no-store":
			cc.noStore = true
		case "only-if-cached":
			cc.onlyIfCached = true
		}
	})
	return cc
}

// splitList splits a comma-separated field value into trimmed, non-empty
// elements (quoted commas are not special here: the lists we split hold tokens).
func splitList(v string) []string {
	var out []string
	for len(v) > 0 {
		i := strings.IndexByte(v, ',')
		var part string
		if i < 0 {
			part, v = v, ""
		} else {
			part, v = v[:i], v[i+1:]
		}
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
