package reverse

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/glob"

	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/config/field"
)

// Defaults applied to zero-valued fields.
const (
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout    = 120 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMinBodyGrace   = 5 * time.Second
)

// Config is the reverse door's section of the policy file.
type Config struct {
	// Listen are plain-HTTP listen addresses ("127.0.0.1:8080").
	Listen []string `yaml:"listen"`
	// TLSListen are HTTPS listen addresses; they need TLS.
	TLSListen []string `yaml:"tls_listen"`
	// TLS says where HTTPS certificates come from.
	TLS TLSConfig `yaml:"tls"`
	// StateDir holds the internal CA ("" = the engine's state directory).
	StateDir string `yaml:"state_dir"`
	// RedirectHTTPS answers plain-HTTP requests with a 308 to https.
	RedirectHTTPS bool `yaml:"redirect_https"`
	// HTTP2 offers HTTP/2 to TLS clients (default true).
	HTTP2 *bool `yaml:"http2"`
	// HTTP3 serves HTTP/3 over QUIC on the UDP port of every TLS listener, with
	// the same certificates and routes, and advertises it with Alt-Svc.
	HTTP3 bool `yaml:"http3"`
	// Routes are tried in order; the first that matches serves the request.
	Routes []Route `yaml:"routes"`
	// Limits are the defaults for every route; connection-level limits
	// (max_conns, max_conns_per_client, header_timeout, max_header_bytes) are
	// only read here.
	Limits Limits `yaml:"limits"`
	// ForwardedHeaders controls the forwarding headers sent to members.
	ForwardedHeaders ForwardedHeaders `yaml:"forwarded_headers"`
	// Hide is applied to responses of routes with hide_origin.
	Hide Hide `yaml:"hide"`
}

// Route sends matching requests to a pool. Every condition given must match.
type Route struct {
	// Name identifies the route in rules (Facts.Route), logs and Wrap.
	Name string `yaml:"name"`
	// Host are exact names or "*.example.test" (any subdomain); empty = any.
	Host []string `yaml:"host"`
	// PathPrefix the path must start with ("" = any).
	PathPrefix string `yaml:"path_prefix"`
	// PathGlob the path must match ("*" stops at "/", "**" does not).
	PathGlob string `yaml:"path_glob"`
	// Methods allowed (empty = any).
	Methods []string `yaml:"methods"`
	// Header values required, exactly ("" = the header is present).
	Header map[string]string `yaml:"header"`
	// Pool names the upstream pool.
	Pool string `yaml:"pool"`
	// Cache names the cache policy for this route. The reverse door does not
	// read it: the engine's Options.Wrap does.
	Cache string `yaml:"cache"`
	// Limits override the door's limits for this route (per-request ones only).
	Limits *Limits `yaml:"limits"`
	// HideOrigin applies the door's Hide settings to this route's responses.
	HideOrigin bool `yaml:"hide_origin"`
}

// Limits protect the door from abuse. Zero means "default" (for the timeouts
// and header size) or "unlimited" (for the rest).
type Limits struct {
	// Rate is the per-client request rate: "100/s", "600/m", "10" (per second).
	Rate Rate `yaml:"rate"`
	// Burst is the token-bucket depth (default: the per-second rate, at least 1).
	Burst int `yaml:"burst"`
	// MaxConnsPerClient bounds open connections from one client address.
	MaxConnsPerClient int `yaml:"max_conns_per_client"`
	// MaxConns bounds open connections overall; further clients wait in the backlog.
	MaxConns int `yaml:"max_conns"`
	// HeaderTimeout bounds reading a request's headers (default 10s): slowloris.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// BodyTimeout bounds reading a request's whole body (0 = unlimited).
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// MinBodyRate, in bytes per second, is the slowest a body may arrive after a
	// 5s grace (0 = unchecked): slow POST.
	MinBodyRate int64 `yaml:"min_body_rate"`
	// MaxHeaderBytes bounds the request header size (default 64 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds the request body; more is refused with 413 (0 = unlimited).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Rate is requests per second, written "N/s", "N/m", "N/h" or a bare number.
type Rate float64

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	num, unit, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("rate %q: want N/s, N/m, N/h or N", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "s":
	case "m":
		v /= 60
	case "h":
		v /= 3600
	default:
		return fmt.Errorf("rate %q: unit must be s, m or h", s)
	}
	*r = Rate(v)
	return nil
}

// ForwardedHeaders controls X-Forwarded-* and RFC 7239 Forwarded. From a client
// in TrustedProxies the incoming values are kept and extended; from anyone else
// they are replaced. A disabled header is removed.
type ForwardedHeaders struct {
	// XForwardedFor sends X-Forwarded-For (default true).
	XForwardedFor *bool `yaml:"x_forwarded_for"`
	// XForwardedProto sends X-Forwarded-Proto (default true).
	XForwardedProto *bool `yaml:"x_forwarded_proto"`
	// XForwardedHost sends X-Forwarded-Host (default true).
	XForwardedHost *bool `yaml:"x_forwarded_host"`
	// Forwarded sends RFC 7239 Forwarded (default false).
	Forwarded bool `yaml:"forwarded"`
	// TrustedProxies are the networks whose forwarding headers are believed;
	// the client address is then the last untrusted X-Forwarded-For entry.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
}

// Hide removes response headers that reveal the origin.
type Hide struct {
	// Remove lists response headers to delete (default: Server, X-Powered-By,
	// X-AspNet-Version, X-AspNetMvc-Version, X-Runtime, X-Generator, Via).
	Remove []string `yaml:"remove"`
	// Server, when set, is sent as the Server header instead.
	Server string `yaml:"server"`
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// Validate reports every problem in c, with paths relative to c.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	for i, a := range c.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("listen[%d]", i), "want host:port, got %q", a))
		}
	}
	for i, a := range c.TLSListen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("tls_listen[%d]", i), "want host:port, got %q", a))
		}
	}
	if c.HTTP3 && len(c.TLSListen) == 0 {
		errs = append(errs, field.Errorf("http3", "needs tls_listen (HTTP/3 is served on the TLS listeners' UDP ports)"))
	}
	errs = append(errs, field.Prefix("tls", c.TLS.Validate(len(c.TLSListen) > 0))...)
	if c.TLS.Mode == certs.ModeACME {
		// The CA connects to the first address of each for its challenges.
		for _, l := range []struct {
			key  string
			list []string
		}{{"listen[0]", c.Listen}, {"tls_listen[0]", c.TLSListen}} {
			if len(l.list) > 0 {
				if _, port, err := net.SplitHostPort(l.list[0]); err == nil && port == "0" {
					errs = append(errs, field.Errorf(l.key, "tls.mode acme needs a fixed port: the ACME CA connects to it"))
				}
			}
		}
	}
	names := map[string]bool{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			errs = append(errs, field.Errorf(field.Join(p, "name"), "required"))
		case names[r.Name]:
			errs = append(errs, field.Errorf(field.Join(p, "name"), "duplicate route %q", r.Name))
		}
		names[r.Name] = true
		if r.Pool == "" {
			errs = append(errs, field.Errorf(field.Join(p, "pool"), "required"))
		}
		for j, h := range r.Host {
			if err := checkHostPattern(h); err != nil {
				errs = append(errs, field.Errorf(field.Join(p, fmt.Sprintf("host[%d]", j)), "%v", err))
			}
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			errs = append(errs, field.Errorf(field.Join(p, "path_prefix"), "must start with /"))
		}
		if r.PathGlob != "" {
			if _, err := glob.Compile(r.PathGlob, '/'); err != nil {
				errs = append(errs, field.Errorf(field.Join(p, "path_glob"), "%v", err))
			}
		}
		for j, m := range r.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t/") {
				errs = append(errs, field.Errorf(field.Join(p, fmt.Sprintf("methods[%d]", j)), "want an upper-case method, got %q", m))
			}
		}
		if r.Limits != nil {
			l := r.Limits
			if l.MaxConns != 0 || l.MaxConnsPerClient != 0 || l.HeaderTimeout != 0 || l.MaxHeaderBytes != 0 {
				errs = append(errs, field.Errorf(field.Join(p, "limits"), "max_conns, max_conns_per_client, header_timeout and max_header_bytes are set only on the door's limits"))
			}
			errs = append(errs, field.Prefix(field.Join(p, "limits"), l.validate())...)
		}
	}
	errs = append(errs, field.Prefix("limits", c.Limits.validate())...)
	for i, h := range c.Hide.Remove {
		if h == "" || strings.ContainsAny(h, " :\t") {
			errs = append(errs, field.Errorf(fmt.Sprintf("hide.remove[%d]", i), "not a header name: %q", h))
		}
	}
	return errs
}

func (l *Limits) validate() []field.Error {
	var errs []field.Error
	neg := func(path string, bad bool) {
		if bad {
			errs = append(errs, field.Errorf(path, "must not be negative"))
		}
	}
	neg("rate", l.Rate < 0)
	neg("burst", l.Burst < 0)
	neg("max_conns_per_client", l.MaxConnsPerClient < 0)
	neg("max_conns", l.MaxConns < 0)
	neg("header_timeout", l.HeaderTimeout < 0)
	neg("body_timeout", l.BodyTimeout < 0)
	neg("min_body_rate", l.MinBodyRate < 0)
	neg("max_header_bytes", l.MaxHeaderBytes < 0)
	neg("max_body_bytes", l.MaxBodyBytes < 0)
	return errs
}

// checkHostPattern accepts "name.example" and "*.example".
func checkHostPattern(h string) error { return certs.CheckName(h) }

// merged returns the per-request limits of a route: its own non-zero values
// over the door's.
func (l Limits) merged(over *Limits) Limits {
	if over == nil {
		return l
	}
	if over.Rate != 0 {
		l.Rate, l.Burst = over.Rate, over.Burst
	}
	if over.Burst != 0 {
		l.Burst = over.Burst
	}
	if over.BodyTimeout != 0 {
		l.BodyTimeout = over.BodyTimeout
	}
	if over.MinBodyRate != 0 {
		l.MinBodyRate = over.MinBodyRate
	}
	if over.MaxBodyBytes != 0 {
		l.MaxBodyBytes = over.MaxBodyBytes
	}
	return l
}

// burst returns the token-bucket depth for l.
func (l *Limits) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(float64(l.Rate))))
}
