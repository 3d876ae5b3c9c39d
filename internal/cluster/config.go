package cluster

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Defaults applied to zero Config fields.
const (
	DefaultTimeout        = 20 * time.Millisecond
	DefaultMaxObjectBytes = 1 << 20
	DefaultTTLCap         = time.Hour
	DefaultKeyPrefix      = "portcullis:"
)

// What may be shared; Config.Share lists a subset (default: all).
const (
	ShareRateLimits = "rate_limits"
	ShareSignIn     = "sign_in"
	ShareCache      = "cache"
	SharePurge      = "purge"
)

var allShares = []string{ShareRateLimits, ShareSignIn, ShareCache, SharePurge}

// Config is the policy file's `cluster:` section.
type Config struct {
	// Node names this node in logs, metrics and the status page (default: the
	// host name).
	Node string `yaml:"node"`
	// Redis is where the shared state lives.
	Redis RedisConfig `yaml:"redis"`
	// Share lists what is shared: rate_limits, sign_in, cache, purge (default all).
	Share []string `yaml:"share"`
	// Cache is the shared cache tier below each node's memory cache.
	Cache CacheConfig `yaml:"cache"`
}

// RedisConfig says how to reach Redis.
type RedisConfig struct {
	// Addrs are host:port addresses: one for standalone, the seed nodes of a
	// Redis Cluster, or the Sentinels.
	Addrs []string `yaml:"addrs"`
	// Mode is standalone (default), cluster or sentinel.
	Mode string `yaml:"mode"`
	// MasterName is the Sentinel master's name (mode sentinel only).
	MasterName string `yaml:"master_name"`
	// Username is the ACL user (optional).
	Username string `yaml:"username"`
	// PasswordFile holds the password (first line), relative to the policy file.
	PasswordFile string `yaml:"password_file"`
	// TLS, when set, connects with TLS.
	TLS *TLSConfig `yaml:"tls"`
	// Timeout bounds every Redis operation a request could wait on (default 20ms).
	Timeout time.Duration `yaml:"timeout"`
	// KeyPrefix is put before every key and channel (default "portcullis:"), so
	// several Portcullis clusters can share one Redis.
	KeyPrefix string `yaml:"key_prefix"`
}

// TLSConfig is the TLS used to reach Redis.
type TLSConfig struct {
	// CAFile verifies the server (default: the system roots).
	CAFile string `yaml:"ca_file"`
	// ServerName is the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
}

// CacheConfig bounds the shared cache tier.
type CacheConfig struct {
	// MaxObjectBytes is the largest body written to Redis (default 1 MiB).
	MaxObjectBytes int64 `yaml:"max_object_bytes"`
	// TTLCap bounds how long a response stays in Redis (default 1h).
	TTLCap time.Duration `yaml:"ttl_cap"`
}

// WithDefaults returns c with zero fields replaced by their defaults (the node
// name from the host name).
func (c Config) WithDefaults() Config {
	if c.Node == "" {
		c.Node, _ = os.Hostname()
		if c.Node == "" {
			c.Node = "node"
		}
	}
	if c.Redis.Mode == "" {
		c.Redis.Mode = "standalone"
	}
	if c.Redis.Timeout == 0 {
		c.Redis.Timeout = DefaultTimeout
	}
	if c.Redis.KeyPrefix == "" {
		c.Redis.KeyPrefix = DefaultKeyPrefix
	}
	if c.Share == nil {
		c.Share = slices.Clone(allShares)
	}
	if c.Cache.MaxObjectBytes == 0 {
		c.Cache.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if c.Cache.TTLCap == 0 {
		c.Cache.TTLCap = DefaultTTLCap
	}
	return c
}

// Shares reports whether what (one of the Share constants) is shared; an absent
// share list (nil) shares everything, as WithDefaults says.
func (c Config) Shares(what string) bool { return c.Share == nil || slices.Contains(c.Share, what) }

// Validate reports every problem with c; paths are relative to the section.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	r := c.Redis
	if len(r.Addrs) == 0 {
		errs = append(errs, field.Errorf("redis.addrs", "at least one Redis address (host:port) is required"))
	}
	for i, a := range r.Addrs {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" || strings.Trim(p, "0123456789") != "" {
			errs = append(errs, field.Errorf(field.Join("redis.addrs", "["+strconv.Itoa(i)+"]"), "%q is not host:port", a))
		}
	}
	switch r.Mode {
	case "", "standalone":
		if len(r.Addrs) > 1 {
			errs = append(errs, field.Errorf("redis.mode", "standalone takes one address; set mode: cluster for a Redis Cluster or mode: sentinel for Sentinels"))
		}
	case "cluster":
	case "sentinel":
		if r.MasterName == "" {
			errs = append(errs, field.Errorf("redis.master_name", "required with mode: sentinel"))
		}
	default:
		errs = append(errs, field.Errorf("redis.mode", "%q is not standalone, cluster or sentinel", r.Mode))
	}
	if r.MasterName != "" && r.Mode != "sentinel" {
		errs = append(errs, field.Errorf("redis.master_name", "only used with mode: sentinel"))
	}
	if r.Timeout < 0 {
		errs = append(errs, field.Errorf("redis.timeout", "must not be negative"))
	}
	seen := map[string]bool{}
	for i, s := range c.Share {
		p := field.Join("share", "["+strconv.Itoa(i)+"]")
		switch {
		case !slices.Contains(allShares, s):
			errs = append(errs, field.Errorf(p, "%q is not one of %s", s, strings.Join(allShares, ", ")))
		case seen[s]:
			errs = append(errs, field.Errorf(p, "%q is listed twice", s))
		}
		seen[s] = true
	}
	if c.Cache.MaxObjectBytes < 0 {
		errs = append(errs, field.Errorf("cache.max_object_bytes", "must not be negative"))
	}
	if c.Cache.MaxObjectBytes > 512<<20 {
		errs = append(errs, field.Errorf("cache.max_object_bytes", "must be at most 512 MiB (Redis's largest string)"))
	}
	if c.Cache.TTLCap < 0 {
		errs = append(errs, field.Errorf("cache.ttl_cap", "must not be negative"))
	}
	return errs
}
