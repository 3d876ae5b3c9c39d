package cache

import (
	"strings"
	"time"

	"github.com/gobwas/glob"

	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/fieldtext"
)

// Defaults applied to zero Config fields.
const (
	DefaultMaxBytes                 int64         = 256 << 20
	DefaultMaxObjectBytes           int64         = 8 << 20
	DefaultCoalesceTimeout          time.Duration = 5 * time.Second
	DefaultHeuristicFraction        float64       = 0.1
	DefaultMaxHeuristicTTL          time.Duration = 24 * time.Hour
	DefaultMaxStaleWhenDown         time.Duration = 24 * time.Hour
	DefaultMaxVariants              int           = 32
	DefaultBackgroundRefreshTimeout time.Duration = 30 * time.Second
)

// Config is the policy file's `cache:` section: one store shared by both doors.
// Zero values mean "use the default" given on each field.
type Config struct {
	// MaxBytes bounds the memory held by stored responses (bodies, headers and a
	// fixed per-object overhead) and by responses being stored as they stream,
	// which may hold half of it. Default 256 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxObjectBytes is the largest body stored; larger responses are streamed to
	// the client and not stored. Default 8 MiB.
	MaxObjectBytes int64 `yaml:"max_object_bytes"`
	// ServeStaleWhenDown serves a stale stored response (up to MaxStaleWhenDown
	// past its freshness) when the origin is down: its pool has no healthy member,
	// the dial fails, or the origin closes or resets the connection without a
	// response. Responses with must-revalidate, proxy-revalidate or
	// s-maxage are never served stale this way. Default false.
	ServeStaleWhenDown bool `yaml:"serve_stale_when_down"`
	// MaxStaleWhenDown bounds the staleness served by ServeStaleWhenDown.
	// Default 24h.
	MaxStaleWhenDown time.Duration `yaml:"max_stale_when_down"`
	// CoalesceTimeout bounds how long concurrent misses for the same URL wait for
	// the one request sent to the origin; after it they go to the origin
	// themselves. Default 5s.
	CoalesceTimeout time.Duration `yaml:"coalesce_timeout"`
	// DefaultHeuristicFraction is the fraction of (Date - Last-Modified) used as
	// freshness lifetime when a response has no explicit expiry and RFC 9111
	// §4.2.2 allows a heuristic. Default 0.1.
	DefaultHeuristicFraction float64 `yaml:"default_heuristic_fraction"`
	// MaxHeuristicTTL caps heuristic freshness. Default 24h.
	MaxHeuristicTTL time.Duration `yaml:"max_heuristic_ttl"`
	// MaxVariants bounds the Vary variants kept per URL; the oldest is dropped.
	// Default 32.
	MaxVariants int `yaml:"max_variants"`
	// BackgroundRefreshTimeout bounds one stale-while-revalidate refresh.
	// Default 30s.
	BackgroundRefreshTimeout time.Duration `yaml:"background_refresh_timeout"`
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if c.MaxObjectBytes > c.MaxBytes {
		c.MaxObjectBytes = c.MaxBytes
	}
	if c.MaxStaleWhenDown == 0 {
		c.MaxStaleWhenDown = DefaultMaxStaleWhenDown
	}
	if c.CoalesceTimeout == 0 {
		c.CoalesceTimeout = DefaultCoalesceTimeout
	}
	if c.DefaultHeuristicFraction == 0 {
		c.DefaultHeuristicFraction = DefaultHeuristicFraction
	}
	if c.MaxHeuristicTTL == 0 {
		c.MaxHeuristicTTL = DefaultMaxHeuristicTTL
	}
	if c.MaxVariants == 0 {
		c.MaxVariants = DefaultMaxVariants
	}
	if c.BackgroundRefreshTimeout == 0 {
		c.BackgroundRefreshTimeout = DefaultBackgroundRefreshTimeout
	}
	return c
}

// Validate reports the problems of c; paths are relative to the cache section.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	if c.MaxBytes < 0 {
		errs = append(errs, field.Errorf("max_bytes", "must not be negative"))
	} else if c.MaxBytes > 0 && c.MaxBytes < 1<<20 {
		errs = append(errs, field.Errorf("max_bytes", "must be at least 1 MiB (1048576)"))
	}
	if c.MaxObjectBytes < 0 {
		errs = append(errs, field.Errorf("max_object_bytes", "must not be negative"))
	} else if max := c.withDefaults().MaxBytes; c.MaxObjectBytes > max {
		errs = append(errs, field.Errorf("max_object_bytes", "must not exceed max_bytes (%d)", max))
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"max_stale_when_down", c.MaxStaleWhenDown},
		{"coalesce_timeout", c.CoalesceTimeout},
		{"max_heuristic_ttl", c.MaxHeuristicTTL},
		{"background_refresh_timeout", c.BackgroundRefreshTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, field.Errorf(d.path, "must not be negative"))
		}
	}
	if c.DefaultHeuristicFraction < 0 || c.DefaultHeuristicFraction > 1 {
		errs = append(errs, field.Errorf("default_heuristic_fraction", "must be between 0 and 1"))
	}
	if c.MaxVariants < 0 {
		errs = append(errs, field.Errorf("max_variants", "must not be negative"))
	}
	return errs
}

// Policy is the per-route (reverse) or per-rule (forward) cache policy. Doors
// attach it to a request's context with WithPolicy. A Policy must not be
// modified once requests use it (a reload builds new ones).
type Policy struct {
	// Enabled turns caching on for the requests carrying this policy. Default false:
	// requests pass straight through to the origin.
	Enabled bool `yaml:"enabled"`
	// MaxTTL caps the freshness lifetime of stored responses (0: no cap; the
	// responses' own headers decide).
	MaxTTL time.Duration `yaml:"max_ttl"`
	// IgnoreQuery lists query parameter names (globs, e.g. "utm_*") left out of
	// the cache key. The origin still receives them.
	IgnoreQuery []string `yaml:"ignore_query"`
	// BypassPaths lists path prefixes ("/api/") or globs ("*.php") whose requests
	// are never answered from or stored in the cache.
	BypassPaths []string `yaml:"bypass_paths"`
	// KeyHeaders lists request header names whose values are added to the cache
	// key, as if every response carried them in Vary.
	KeyHeaders []string `yaml:"key_headers"`
}

// Validate reports the problems of p; paths are relative to the policy.
func (p *Policy) Validate() []field.Error {
	_, errs := compilePolicy(p)
	return errs
}

// compiledPolicy is a Policy made ready for the request path.
type compiledPolicy struct {
	p           *Policy
	ignoreQuery []*glob.Pattern
	bypassGlob  []*glob.Pattern
	bypassPfx   []string
	keyHeaders  []string // canonical names
}

func isGlob(s string) bool { return strings.ContainsAny(s, "*?[{") }

func compilePolicy(p *Policy) (*compiledPolicy, []field.Error) {
	var errs []field.Error
	cp := &compiledPolicy{p: p}
	if p.MaxTTL < 0 {
		errs = append(errs, field.Errorf("max_ttl", "must not be negative"))
	}
	for i, q := range p.IgnoreQuery {
		g, err := glob.Compile(q)
		if err != nil || q == "" {
			errs = append(errs, field.Errorf(field.Join("ignore_query", "["+itoa(i)+"]"), "invalid glob %q", q))
			continue
		}
		cp.ignoreQuery = append(cp.ignoreQuery, g)
	}
	for i, b := range p.BypassPaths {
		path := field.Join("bypass_paths", "["+itoa(i)+"]")
		switch {
		case b == "":
			errs = append(errs, field.Errorf(path, "must not be empty"))
		case isGlob(b):
			g, err := glob.Compile(b)
			if err != nil {
				errs = append(errs, field.Errorf(path, "invalid glob %q", b))
				continue
			}
			cp.bypassGlob = append(cp.bypassGlob, g)
		case b[0] != '/':
			errs = append(errs, field.Errorf(path, "path prefix must start with /"))
		default:
			cp.bypassPfx = append(cp.bypassPfx, b)
		}
	}
	for i, h := range p.KeyHeaders {
		if !fieldtext.IsToken(h) {
			errs = append(errs, field.Errorf(field.Join("key_headers", "["+itoa(i)+"]"), "invalid header name %q", h))
			continue
		}
		cp.keyHeaders = append(cp.keyHeaders, canonical(h))
	}
	return cp, errs
}

// bypass reports whether path is excluded from caching by the policy.
func (cp *compiledPolicy) bypass(path string) bool {
	for _, p := range cp.bypassPfx {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	for _, g := range cp.bypassGlob {
		if g.Match(path) {
			return true
		}
	}
	return false
}

// ignored reports whether the query parameter name is left out of the key.
func (cp *compiledPolicy) ignored(name string) bool {
	for _, g := range cp.ignoreQuery {
		if g.Match(name) {
			return true
		}
	}
	return false
}
