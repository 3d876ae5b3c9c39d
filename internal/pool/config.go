package pool

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Policy names accepted in Config.Policy.
const (
	PolicyRoundRobin         = "round_robin"
	PolicyWeightedRoundRobin = "weighted_round_robin"
	PolicyLeastConn          = "least_conn"
	PolicyP2C                = "p2c"
	PolicyIPHash             = "ip_hash"
	PolicyHash               = "hash"
	PolicyFirst              = "first"
)

// Defaults applied to zero-valued fields.
const (
	DefaultHealthInterval  = 10 * time.Second
	DefaultHealthTimeout   = 2 * time.Second
	DefaultRise            = 2
	DefaultFall            = 3
	DefaultMaxFails        = 3
	DefaultCooldown        = 10 * time.Second
	DefaultRetries         = 2
	DefaultBudgetRatio     = 0.2
	DefaultMinRetriesPerS  = 10
	DefaultDialTimeout     = 5 * time.Second
	DefaultTLSHandshake    = 5 * time.Second
	DefaultResponseHeader  = 60 * time.Second
	DefaultIdleTimeout     = 90 * time.Second
	DefaultMaxIdlePerMembr = 256
)

// Config is one pool's section of the policy file.
type Config struct {
	// Members are the upstreams; at least one is required.
	Members []MemberConfig `yaml:"members"`
	// Policy selects a member: round_robin (default), weighted_round_robin,
	// least_conn, p2c (random of two choices by load), ip_hash, hash (consistent
	// hash of the key named by HashKey) or first (ordered failover).
	Policy string `yaml:"policy"`
	// HashKey names what the reverse door hashes for policy "hash":
	// "header:X-User" or "cookie:session". Ignored by the pool itself, which
	// hashes whatever key the caller put in the context (WithKey).
	HashKey string `yaml:"hash_key"`
	// Health configures active health checks; Path "" disables them.
	Health HealthConfig `yaml:"health"`
	// Passive configures passive health (ejection after consecutive failures).
	Passive PassiveConfig `yaml:"passive"`
	// Retries bounds retries on another member.
	Retries RetryConfig `yaml:"retries"`
	// Dial is the TCP connect timeout (default 5s).
	Dial time.Duration `yaml:"dial"`
	// TLSHandshake is the TLS handshake timeout to https members (default 5s).
	TLSHandshake time.Duration `yaml:"tls_handshake"`
	// ResponseHeader is how long to wait for a member's response headers once the
	// request is written (default 60s).
	ResponseHeader time.Duration `yaml:"response_header"`
	// Idle is how long an idle keep-alive connection to a member is kept (default 90s).
	Idle time.Duration `yaml:"idle"`
	// MaxIdlePerMember bounds idle keep-alive connections per member (default 256: enough for 64+ concurrent clients without reconnecting).
	MaxIdlePerMember int `yaml:"max_idle_per_member"`
	// TLS configures verification of https members.
	TLS TLSConfig `yaml:"tls"`
	// Parent makes the members parent proxies (Squid's cache_peer parent) for
	// the forward door: requests keep their absolute URL and are sent to the
	// member as to a proxy, tunnels are opened with CONNECT through it. Members
	// must be http://host:port.
	Parent bool `yaml:"parent"`
	// CredentialsFile names a file holding "user:password" for the parents'
	// Proxy-Authorization (Basic); only with Parent. The caller reads it into
	// Credentials (paths are relative to the policy file).
	CredentialsFile string `yaml:"credentials_file"`
	// Credentials is the content of CredentialsFile ("user:password"), filled in
	// by the caller that read it. Never logged.
	Credentials string `yaml:"-"`
}

// MemberConfig is one upstream.
type MemberConfig struct {
	// URL is http://host:port or https://host:port, optionally with a path prefix.
	URL string `yaml:"url"`
	// Weight is the member's relative share for weighted policies (default 1).
	Weight int `yaml:"weight"`
}

// HealthConfig configures active health checks.
type HealthConfig struct {
	// Path is requested on each member with GET; "" disables active checks.
	Path string `yaml:"path"`
	// Interval between checks (default 10s).
	Interval time.Duration `yaml:"interval"`
	// Timeout of one check (default 2s).
	Timeout time.Duration `yaml:"timeout"`
	// ExpectStatus is the status a healthy member answers; 0 accepts 200–399.
	ExpectStatus int `yaml:"expect_status"`
	// Rise is how many consecutive passing checks bring a member back (default 2).
	Rise int `yaml:"rise"`
	// Fall is how many consecutive failing checks take a member down (default 3).
	Fall int `yaml:"fall"`
	// TCP checks members by opening a TCP connection (closed at once, nothing
	// sent) instead of requesting Path: the check for parent proxies, which
	// answer no request of their own. Exclusive with Path.
	TCP bool `yaml:"tcp"`
}

// active reports whether active checks are configured.
func (h *HealthConfig) active() bool { return h.Path != "" || h.TCP }

// PassiveConfig configures passive health: real requests that fail (transport
// errors and timeouts, not client cancellations) count against a member.
type PassiveConfig struct {
	// MaxFails consecutive failures eject the member (default 3; -1 disables).
	// The last available member of a pool is never ejected: it keeps
	// receiving requests and its failures are logged.
	MaxFails int `yaml:"max_fails"`
	// Cooldown is how long an ejected member is skipped (default 10s).
	Cooldown time.Duration `yaml:"cooldown"`
	// UnhealthyStatus lists response statuses that count as failures (for
	// example [502, 503, 504]); the response is still passed on, not retried.
	// Empty: only transport errors and timeouts count.
	UnhealthyStatus []int `yaml:"unhealthy_status"`
}

// RetryConfig bounds retries. A request is retried on another member when it is
// idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or has Idempotency-Key) and
// its body can be replayed, or whenever nothing reached the member (dial failed).
type RetryConfig struct {
	// Max retries per request (default 2; -1 disables retries).
	Max int `yaml:"max"`
	// BudgetRatio is the fraction of requests that may be retries (default 0.2).
	BudgetRatio float64 `yaml:"budget_ratio"`
	// MinPerSecond retries are always allowed per second whatever the ratio (default 10).
	MinPerSecond int `yaml:"min_per_second"`
}

// TLSConfig configures TLS to https members.
type TLSConfig struct {
	// CAFile is a PEM bundle of CAs trusted for members ("" = system roots).
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify disables verification of members' certificates (logged).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ServerName overrides the name verified and sent as SNI.
	ServerName string `yaml:"server_name"`
}

// Validate reports every problem in c, with paths relative to c.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	if len(c.Members) == 0 {
		errs = append(errs, field.Errorf("members", "at least one member is required"))
	}
	seen := make(map[string]bool, len(c.Members))
	for i, m := range c.Members {
		p := fmt.Sprintf("members[%d]", i)
		if u, err := parseMemberURL(m.URL); err != nil {
			errs = append(errs, field.Errorf(field.Join(p, "url"), "%v", err))
		} else if err := c.checkParentURL(u); err != nil {
			errs = append(errs, field.Errorf(field.Join(p, "url"), "%v", err))
		} else if seen[m.URL] {
			errs = append(errs, field.Errorf(field.Join(p, "url"), "duplicate member %q", m.URL))
		}
		seen[m.URL] = true
		if m.Weight < 0 {
			errs = append(errs, field.Errorf(field.Join(p, "weight"), "must not be negative"))
		}
	}
	if _, ok := newSelector(c.Policy, c.HashKey); !ok {
		errs = append(errs, field.Errorf("policy", "unknown policy %q (want round_robin, weighted_round_robin, least_conn, p2c, ip_hash, hash or first)", c.Policy))
	}
	if c.HashKey != "" {
		kind, name, ok := strings.Cut(c.HashKey, ":")
		if !ok || name == "" || (kind != "header" && kind != "cookie") {
			errs = append(errs, field.Errorf("hash_key", "want header:NAME or cookie:NAME, got %q", c.HashKey))
		}
	}
	if c.Policy == PolicyHash && c.HashKey == "" {
		errs = append(errs, field.Errorf("hash_key", "required by policy hash"))
	}
	if c.CredentialsFile != "" && !c.Parent {
		errs = append(errs, field.Errorf("credentials_file", "only parent proxies (parent: true) take credentials"))
	}
	if c.Credentials != "" {
		if _, _, err := ParseCredentials(c.Credentials); err != nil {
			errs = append(errs, field.Errorf("credentials_file", "%v", err))
		}
	}
	if c.Health.TCP && c.Health.Path != "" {
		errs = append(errs, field.Errorf("health.tcp", "a check is either tcp or a GET of path, not both"))
	}
	if c.Parent && c.Health.Path != "" {
		errs = append(errs, field.Errorf("health.path", "parent proxies are checked with health.tcp: true, not a GET"))
	}
	if c.Health.Path != "" && !strings.HasPrefix(c.Health.Path, "/") {
		errs = append(errs, field.Errorf("health.path", "must start with /"))
	}
	if s := c.Health.ExpectStatus; s != 0 && (s < 100 || s > 599) {
		errs = append(errs, field.Errorf("health.expect_status", "not an HTTP status: %d", s))
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"health.interval", c.Health.Interval}, {"health.timeout", c.Health.Timeout},
		{"passive.cooldown", c.Passive.Cooldown}, {"dial", c.Dial}, {"tls_handshake", c.TLSHandshake},
		{"response_header", c.ResponseHeader}, {"idle", c.Idle},
	} {
		if d.v < 0 {
			errs = append(errs, field.Errorf(d.path, "must not be negative"))
		}
	}
	for _, n := range []struct {
		path string
		v    int
	}{
		{"health.rise", c.Health.Rise}, {"health.fall", c.Health.Fall},
		{"retries.min_per_second", c.Retries.MinPerSecond}, {"max_idle_per_member", c.MaxIdlePerMember},
	} {
		if n.v < 0 {
			errs = append(errs, field.Errorf(n.path, "must not be negative"))
		}
	}
	if c.Passive.MaxFails < -1 {
		errs = append(errs, field.Errorf("passive.max_fails", "must be -1 (off), 0 (default) or positive"))
	}
	for i, st := range c.Passive.UnhealthyStatus {
		if st < 100 || st > 599 {
			errs = append(errs, field.Errorf(fmt.Sprintf("passive.unhealthy_status[%d]", i), "not an HTTP status: %d", st))
		}
	}
	if c.Retries.Max < -1 {
		errs = append(errs, field.Errorf("retries.max", "must be -1 (off), 0 (default) or positive"))
	}
	if r := c.Retries.BudgetRatio; r < 0 || r > 1 {
		errs = append(errs, field.Errorf("retries.budget_ratio", "must be between 0 and 1"))
	}
	if c.TLS.CAFile != "" {
		if _, err := loadCAs(c.TLS.CAFile); err != nil {
			errs = append(errs, field.Errorf("tls.ca_file", "%v", err))
		}
	}
	return errs
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Policy == "" {
		c.Policy = PolicyRoundRobin
	}
	def(&c.Health.Interval, DefaultHealthInterval)
	def(&c.Health.Timeout, DefaultHealthTimeout)
	defInt(&c.Health.Rise, DefaultRise)
	defInt(&c.Health.Fall, DefaultFall)
	defInt(&c.Passive.MaxFails, DefaultMaxFails)
	def(&c.Passive.Cooldown, DefaultCooldown)
	defInt(&c.Retries.Max, DefaultRetries)
	if c.Retries.BudgetRatio == 0 {
		c.Retries.BudgetRatio = DefaultBudgetRatio
	}
	defInt(&c.Retries.MinPerSecond, DefaultMinRetriesPerS)
	def(&c.Dial, DefaultDialTimeout)
	def(&c.TLSHandshake, DefaultTLSHandshake)
	def(&c.ResponseHeader, DefaultResponseHeader)
	def(&c.Idle, DefaultIdleTimeout)
	defInt(&c.MaxIdlePerMember, DefaultMaxIdlePerMembr)
	members := make([]MemberConfig, len(c.Members))
	copy(members, c.Members)
	for i := range members {
		defInt(&members[i].Weight, 1)
	}
	c.Members = members
	return c
}

// parseMemberURL checks a member URL: http or https, a host, no query or fragment.
func parseMemberURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("no host in %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("no query, fragment or credentials allowed in %q", s)
	}
	return u, nil
}

// checkParentURL checks a parent proxy's member URL: http://host:port, nothing more.
func (c *Config) checkParentURL(u *url.URL) error {
	if !c.Parent {
		return nil
	}
	if u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("a parent proxy is http://host:port, got %q", u.String())
	}
	return nil
}

// ParseCredentials splits the content of a credentials file, "user:password"
// (surrounding white space and a final newline ignored), for Basic
// Proxy-Authorization. Its errors never quote the content.
func ParseCredentials(s string) (user, password string, err error) {
	s = strings.TrimSpace(s)
	user, password, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return "", "", fmt.Errorf("want user:password on one line")
	case user == "":
		return "", "", fmt.Errorf("the user name (before the colon) is empty")
	case strings.ContainsAny(s, "\r\n"):
		return "", "", fmt.Errorf("want user:password on one line")
	}
	return user, password, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificates in %s", file)
	}
	return pool, nil
}

// clientTLS builds the TLS configuration for https members.
func (c *Config) clientTLS() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLS.ServerName,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // explicit, logged opt-in
	}
	if c.TLS.CAFile != "" {
		roots, err := loadCAs(c.TLS.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = roots
	}
	return tc, nil
}
