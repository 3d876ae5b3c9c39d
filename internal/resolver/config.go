package resolver

import (
	"fmt"
	"os"
	"time"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Defaults applied to zero Config fields.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultMaxTTL      = time.Hour
	DefaultNegativeTTL = 5 * time.Minute
	DefaultMaxEntries  = 100_000
	// SystemTTL is the lifetime given to answers from the "system" upstream, which
	// does not report TTLs (still clamped by min_ttl/max_ttl).
	SystemTTL = 30 * time.Second
)

// Config is the resolver's section of the policy file.
type Config struct {
	// Upstreams are tried in order, failing over to the next on timeout, network
	// error, SERVFAIL or REFUSED: "udp://IP:PORT" (UDP, TCP on truncation; the
	// default scheme, port 53), "tcp://IP:PORT", "tls://HOST:PORT" (DNS over TLS,
	// port 853; HOST is the certificate name, or an IP with an IP SAN; write
	// "tls://IP:PORT#NAME" to dial an IP and verify NAME), or "system" (the OS
	// resolver via net.Resolver for A/AAAA, /etc/resolv.conf servers for other
	// types). Default ["system"]. Whatever the upstreams, localhost and the names
	// under it resolve to 127.0.0.1 and ::1 without asking them (RFC 6761).
	Upstreams []string `yaml:"upstreams"`
	// Timeout bounds one attempt at one upstream. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Cache bounds the answer cache.
	Cache CacheConfig `yaml:"cache"`
	// Egress lists the private ranges DialContext may connect to.
	Egress EgressConfig `yaml:"egress"`
	// TLSCAFile is a PEM bundle trusted for tls:// upstreams instead of the
	// system roots (for private DoT servers and tests). Default: system roots.
	TLSCAFile string `yaml:"tls_ca_file"`
}

// CacheConfig bounds the answer cache.
type CacheConfig struct {
	// MinTTL is the floor applied to positive answers' TTLs. Default 0 (none).
	MinTTL time.Duration `yaml:"min_ttl"`
	// MaxTTL is the ceiling applied to every cached answer. Default 1h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// NegativeTTL is the ceiling for NXDOMAIN/NODATA answers, which are cached
	// for min(SOA TTL, SOA MINIMUM) per RFC 2308. Default 5m.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// MaxEntries bounds the number of cached answers. Default 100000; -1
	// disables the cache.
	MaxEntries int `yaml:"max_entries"`
}

// EgressConfig is the egress guard's policy.
type EgressConfig struct {
	// Allow lists destinations DialContext may connect to although they are
	// loopback, private, link-local, CGNAT, unique-local, multicast, unspecified
	// or reserved: "10.20.0.0/16" (every port) or "127.0.0.1/32:8080,8443"
	// (those ports; ranges as 8000-8099). The process's own listeners are
	// refused whatever this says. Default: none.
	Allow []EgressAllow `yaml:"allow"`
}

// Validate checks the upstream URLs, durations and the CA file.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	for i, u := range c.Upstreams {
		if _, err := parseUpstream(u); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("upstreams[%d]", i), "%v", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, field.Errorf("timeout", "must not be negative"))
	}
	if c.Cache.MinTTL < 0 || c.Cache.MaxTTL < 0 || c.Cache.NegativeTTL < 0 {
		errs = append(errs, field.Errorf("cache", "ttls must not be negative"))
	}
	if c.Cache.MaxTTL > 0 && c.Cache.MinTTL > c.Cache.MaxTTL {
		errs = append(errs, field.Errorf("cache.min_ttl", "is above max_ttl"))
	}
	if c.Cache.MaxEntries < -1 {
		errs = append(errs, field.Errorf("cache.max_entries", "must be -1 (off), 0 (default) or positive"))
	}
	for i, p := range c.Egress.Allow {
		if !p.Prefix.IsValid() {
			errs = append(errs, field.Errorf(fmt.Sprintf("egress.allow[%d]", i), "invalid prefix"))
		}
	}
	if c.TLSCAFile != "" {
		if _, err := os.Stat(c.TLSCAFile); err != nil {
			errs = append(errs, field.Errorf("tls_ca_file", "%v", err))
		}
	}
	return errs
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if len(c.Upstreams) == 0 {
		c.Upstreams = []string{"system"}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Cache.MaxTTL == 0 {
		c.Cache.MaxTTL = DefaultMaxTTL
	}
	if c.Cache.NegativeTTL == 0 {
		c.Cache.NegativeTTL = DefaultNegativeTTL
	}
	if c.Cache.MaxEntries == 0 {
		c.Cache.MaxEntries = DefaultMaxEntries
	}
	return c
}
