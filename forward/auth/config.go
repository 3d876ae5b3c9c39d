package auth

import (
	"strings"
	"time"

	"github.com/portcullis/portcullis/forward/auth/directory"
	"github.com/portcullis/portcullis/internal/config/field"
)

// Config is the proxy_auth section of the policy file. The zero value means
// "no proxy authentication".
type Config struct {
	// HtpasswdFile is the htpasswd file with bcrypt entries
	// (`portcullis passwd FILE USER`, or `htpasswd -B`). Empty disables
	// authentication.
	HtpasswdFile string `yaml:"htpasswd_file"`
	// GroupFile is an optional file of "group: user1 user2" lines.
	GroupFile string `yaml:"group_file"`
	// Realm is shown by the browser's login prompt (default "Portcullis").
	Realm string `yaml:"realm"`
	// CacheTTL is how long a successful check is remembered (default
	// DefaultCacheTTL; negative disables the cache).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the remembered checks (default DefaultCacheSize).
	CacheSize int `yaml:"cache_size"`
	// Limiter limits failed attempts per (user, client address) and per client
	// address.
	Limiter LimiterConfig `yaml:"limiter"`
	// LDAP checks sign-ins against the school's directory instead of an
	// htpasswd file (not both: one source of passwords).
	LDAP *directory.Config `yaml:"ldap"`
	// Exempt lists clients and destinations that need no sign-in.
	Exempt Exempt `yaml:"exempt"`
}

// Enabled reports whether authentication is configured.
func (c *Config) Enabled() bool { return c.HtpasswdFile != "" || c.LDAP != nil }

// Validate reports problems with c; paths are relative to c.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	if c.GroupFile != "" && c.HtpasswdFile == "" {
		errs = append(errs, field.Errorf("group_file", "needs htpasswd_file"))
	}
	if c.LDAP != nil {
		if c.HtpasswdFile != "" {
			errs = append(errs, field.Errorf("ldap", "choose htpasswd_file or ldap, not both: one place decides a user's password"))
		}
		errs = append(errs, field.Prefix("ldap", c.LDAP.Validate())...)
	}
	if (len(c.Exempt.Clients) > 0 || len(c.Exempt.Domains) > 0) && !c.Enabled() {
		errs = append(errs, field.Errorf("exempt", "needs htpasswd_file or ldap (without sign-in, everyone is exempt)"))
	}
	errs = append(errs, field.Prefix("exempt", c.Exempt.Validate())...)
	if strings.ContainsFunc(c.Realm, func(r rune) bool { return r < ' ' || r == 0x7f || r == '"' || r == '\\' }) {
		errs = append(errs, field.Errorf("realm", "must not contain quotes, backslashes or control characters"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, field.Errorf("cache_size", "must not be negative"))
	}
	l := c.Limiter
	if l.MaxFailures < 0 {
		errs = append(errs, field.Errorf("limiter.max_failures", "must not be negative"))
	}
	if l.Window < 0 {
		errs = append(errs, field.Errorf("limiter.window", "must not be negative"))
	}
	if l.Lockout < 0 {
		errs = append(errs, field.Errorf("limiter.lockout", "must not be negative"))
	}
	if l.MaxAddressFailures < 0 {
		errs = append(errs, field.Errorf("limiter.max_address_failures", "must not be negative"))
	}
	if l.SlowInterval < 0 {
		errs = append(errs, field.Errorf("limiter.slow_interval", "must not be negative"))
	}
	if l.MaxAddresses < 0 {
		errs = append(errs, field.Errorf("limiter.max_addresses", "must not be negative"))
	}
	return errs
}

// Load loads the Store c describes (c must be Enabled). Relative paths are
// taken as they are: the caller resolves them against the policy file first.
func (c *Config) Load(opts ...Option) (*Store, error) {
	ttl := c.CacheTTL
	switch {
	case ttl == 0:
		ttl = DefaultCacheTTL
	case ttl < 0:
		ttl = 0
	}
	return Load(c.HtpasswdFile, c.GroupFile, append([]Option{WithCache(ttl, c.CacheSize)}, opts...)...)
}
