package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheStatus is one RFC 9211 Cache-Status list member for Portcullis.
type cacheStatus struct {
	hit       bool
	fwd       string // bypass, method, uri-miss, vary-miss, miss, request, stale
	fwdStatus int
	ttl       time.Duration
	hasTTL    bool
	stored    bool
	collapsed bool
	detail    string
	tier      bool // a hit of the shared tier (another node stored it)
}

// String renders s as a Cache-Status list member.
func (s *cacheStatus) String() string {
	var b strings.Builder
	b.Grow(64)
	if s.tier {
		// The shared tier is a cache of its own, nearer the origin: it hit,
		// the memory cache missed and stored what it got.
		b.WriteString("Portcullis-Shared; hit")
		if s.hasTTL {
			b.WriteString("; ttl=")
			b.WriteString(strconv.FormatInt(int64(s.ttl/time.Second), 10))
		}
		b.WriteString(", Portcullis; fwd=uri-miss; stored")
		return b.String()
	}
	b.WriteString("Portcullis")
	if s.hit {
		b.WriteString("; hit")
	}
	if s.fwd != "" {
		b.WriteString("; fwd=")
		b.WriteString(s.fwd)
		if s.fwdStatus != 0 {
			b.WriteString("; fwd-status=")
			b.WriteString(strconv.Itoa(s.fwdStatus))
		}
	}
	if s.hasTTL {
		b.WriteString("; ttl=")
		b.WriteString(strconv.FormatInt(int64(s.ttl/time.Second), 10))
	}
	if s.stored {
		b.WriteString("; stored")
	}
	if s.collapsed && s.fwd != "" {
		b.WriteString("; collapsed")
	}
	if s.detail != "" {
		b.WriteString("; detail=")
		b.WriteString(s.detail)
	}
	return b.String()
}

// apply appends s to h's Cache-Status (caches closer to the client come last).
func (s *cacheStatus) apply(h http.Header) {
	v := s.String()
	if old := h["Cache-Status"]; len(old) > 0 {
		h["Cache-Status"] = append(old[:len(old):len(old)], v)
		return
	}
	h["Cache-Status"] = []string{v}
}

// Result summarises a response's Portcullis Cache-Status for access logs: "hit",
// "stale" (served stale), "revalidated", "miss", "bypass" (not eligible) or ""
// when the cache did not see the response.
func Result(h http.Header) string {
	vs := h["Cache-Status"]
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if !strings.HasPrefix(v, "Portcullis") {
		return ""
	}
	switch {
	case strings.Contains(v, "; hit") && strings.Contains(v, "; ttl=-"):
		return "stale"
	case strings.Contains(v, "; hit"):
		return "hit"
	case strings.Contains(v, "fwd-status=304") && strings.Contains(v, "fwd=stale"):
		return "revalidated"
	case strings.Contains(v, "detail=stale-if-error"), strings.Contains(v, "detail=origin-down"):
		return "stale"
	case strings.Contains(v, "fwd=bypass"), strings.Contains(v, "fwd=method"):
		return "bypass"
	}
	return "miss"
}
