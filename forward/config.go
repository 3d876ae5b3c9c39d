package forward

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/forward/socks"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/config/field"
)

// Defaults applied to zero Config fields.
const (
	DefaultListen                = "127.0.0.1:3128"
	DefaultDialTimeout           = 10 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultTunnelIdleTimeout     = 10 * time.Minute
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultMaxIdleConnsPerHost   = 256
	DefaultMaxIdleConns          = 4096
	DefaultSNIPeekTimeout        = 5 * time.Second
	DefaultRequestBodyTimeout    = 60 * time.Second
)

// Config is the policy file's `forward:` section.
type Config struct {
	// Listen holds the addresses ("host:port") the engine listens on for this door.
	// Default ["127.0.0.1:3128"].
	Listen []string `yaml:"listen"`
	// Intercept holds the listeners for connections a firewall redirected to
	// the proxy (transparent interception; see intercept.go). Default none.
	Intercept InterceptConfig `yaml:"intercept"`
	// Socks holds the SOCKS5 listeners of the door (forward/socks). Default none.
	Socks socks.Config `yaml:"socks"`
	// TLSListen holds the addresses of the door's TLS listeners: the same door
	// reached over TLS (an HTTPS proxy), HTTP/1.1 or HTTP/2 by ALPN. Needs TLS.
	// Default none.
	TLSListen []string `yaml:"tls_listen"`
	// TLS says where the TLS listeners' certificates come from: files, or the
	// internal CA (the reverse door's: in reverse.state_dir, else the default
	// state directory) for Names, default "localhost" and the IP addresses
	// TLSListen names.
	TLS certs.Config `yaml:"tls"`
	// TLSProbeResistance makes the TLS listeners answer a client that has not
	// signed in as a web site would (tlsdoor.go). Nil: off.
	TLSProbeResistance *ProbeResistance `yaml:"tls_probe_resistance"`
	// AllowClients holds the client networks that may use the proxy; everyone else
	// gets 403. Default: loopback only (127.0.0.0/8 and ::1/128).
	AllowClients []netip.Prefix `yaml:"allow_clients"`
	// ConnectPorts holds the destination ports CONNECT may reach. Default [443].
	ConnectPorts []int `yaml:"connect_ports"`
	// Profile names the anonymize profile used when a verdict names none. Default ""
	// (the anonymize package's default).
	Profile string `yaml:"profile"`
	// Contact is the line shown at the foot of the block page, e.g. "Questions? Ask
	// the IT office, room 12". Default: a generic hint.
	Contact string `yaml:"contact"`
	// BlockPage is how block pages look: a template, the fallback languages and an
	// unblock link. Default: the built-in page, in the browser's language.
	BlockPage BlockPageConfig `yaml:"block_page"`
	// DialTimeout bounds connecting to an origin (HTTP and CONNECT). Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// TLSHandshakeTimeout bounds the TLS handshake with an origin. Default 10s.
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`
	// ResponseHeaderTimeout bounds the wait for an origin's response headers once the
	// request is sent; past it the client gets 504. Default 60s.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout closes idle pooled origin connections. Default 90s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// TunnelIdleTimeout closes a CONNECT tunnel after no byte moved either way for
	// this long (detected within 1.5 times the value). Default 10m.
	TunnelIdleTimeout time.Duration `yaml:"tunnel_idle_timeout"`
	// TCPCongestion names the TCP congestion control of the connections the
	// door's plain listeners (Listen) accept, e.g. "reno" (Linux only; empty:
	// the system's, net.ipv4.tcp_congestion_control). It is set when a
	// listener opens. With bbr and no fq qdisc the kernel paces each burst
	// with a timer of its own, which is where a CONNECT tunnel's bulk sending
	// spends most of its CPU on some machines (docs/performance.md).
	TCPCongestion string `yaml:"tcp_congestion"`
	// ReadHeaderTimeout is for the engine's http.Server on this door's listeners.
	// Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// RequestBodyTimeout is the longest the door waits for the next piece of a
	// request body (nginx's client_body_timeout): a client that sends nothing for
	// this long gets 408 and the connection is closed. It applies to requests on
	// the door's listeners (inside an inspected tunnel, the tunnel's own limits
	// apply). Default 60s.
	RequestBodyTimeout time.Duration `yaml:"request_body_timeout"`
	// MaxIdleConnsPerHost is the idle origin connections kept per host. Default 256.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// MaxIdleConns is the idle origin connections kept in all. Default 4096.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// MaxConns bounds the client connections open on each listener of the
	// door; at the bound, new ones wait in the kernel's backlog until one
	// closes. 0 derives it from the descriptor limit (RLIMIT_NOFILE) at
	// start, so that each connection and its upstream fit (see
	// accept.ConnBudget); -1 is unlimited. Read when a listener is bound.
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerClient bounds the connections from one client address on
	// each listener; further ones are closed at once. 0 is unlimited (the
	// default: a school's clients may share one address behind NAT).
	MaxConnsPerClient int `yaml:"max_conns_per_client"`

	// CACert is the inspection CA certificate (PEM) the engine loads with certs.LoadCA and
	// passes as Options.CA; `portcullis ca create` writes it. "" = no inspection.
	CACert string `yaml:"ca_cert"`
	// CAKey is the CA's private key file (PEM, mode 0600). Required with ca_cert.
	CAKey string `yaml:"ca_key"`
	// CAClients holds the client networks known to trust the CA: a blocked HTTPS
	// site is then inspected just to show them the block page ("inspect to block").
	// Default: none (blocked HTTPS gets 403 on CONNECT, or a closed tunnel). Ignored
	// without a CA.
	CAClients []netip.Prefix `yaml:"ca_clients"`
	// LeafCacheSize bounds the cache of generated leaf certificates. Default 10000.
	LeafCacheSize int `yaml:"leaf_cache_size"`
	// SNIPeekTimeout is how long an allowed tunnel waits for the client's TLS
	// ClientHello, to check its server name, before relaying without it; an
	// inspected connection whose client does not complete the TLS handshake
	// within it again is closed. Default 5s.
	SNIPeekTimeout time.Duration `yaml:"sni_peek_timeout"`
	// UpstreamCAFile is a PEM bundle to verify origin certificates with, instead of
	// the system roots (LoadRootCAs; the engine puts it in
	// TransportConfig.TLSClientConfig). Default "": the system roots.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// SNIMustMatch refuses a tunnel whose SNI differs from the CONNECT host name
	// (domain fronting). Default false: the SNI is checked against the rules only.
	SNIMustMatch bool `yaml:"sni_must_match"`

	// School holds proxy sign-in, PAC, SafeSearch and content filtering (school.go).
	School `yaml:",inline"`
}

// BlockPageConfig is the `forward.block_page:` section.
type BlockPageConfig struct {
	// Template is an html/template file (relative to the policy file) rendering
	// the HTML block page with a filter.BlockView; "" = the built-in page. The
	// plain-text page is always the built-in one.
	Template string `yaml:"template"`
	// Lang is the languages (shipped translations: filter.BlockLanguages) to show
	// the page in, in order, when the request's Accept-Language names none that
	// is shipped. Default: English.
	Lang []string `yaml:"lang"`
	// UnblockURL is the "ask for this site to be unblocked" link, with
	// placeholders {url}, {host}, {category}, {rule}, {reason} and {user} filled
	// in query-escaped. "" = no link.
	UnblockURL string `yaml:"unblock_url"`
}

// Validate reports unknown languages and a malformed unblock link; the template is
// checked when the policy is compiled.
func (b *BlockPageConfig) Validate() []field.Error {
	var errs []field.Error
	shipped := filter.BlockLanguages()
	for i, l := range b.Lang {
		if !slices.Contains(shipped, l) {
			errs = append(errs, field.Errorf(fmt.Sprintf("lang[%d]", i), "no block page translation for %q (shipped: %s)", l, strings.Join(shipped, ", ")))
		}
	}
	if b.UnblockURL != "" {
		if err := filter.CheckUnblockURL(b.UnblockURL); err != nil {
			errs = append(errs, field.Errorf("unblock_url", "%v", err))
		}
	}
	return errs
}

// Validate reports every problem with c; paths are relative to the section.
func (c *Config) Validate() []field.Error {
	errs := field.Prefix("block_page", c.BlockPage.Validate())
	for i, a := range c.Listen {
		errs = append(errs, validateListen(fmt.Sprintf("listen[%d]", i), a)...)
	}
	errs = append(errs, c.Intercept.validate()...)
	for i, a := range c.Socks.Listen {
		errs = append(errs, validateListen(fmt.Sprintf("socks.listen[%d]", i), a)...)
	}
	errs = append(errs, field.Prefix("socks", c.Socks.Validate(c.Auth.Enabled()))...)
	errs = append(errs, c.validateTLS()...)
	for i, pf := range c.AllowClients {
		if !pf.IsValid() {
			errs = append(errs, field.Errorf(fmt.Sprintf("allow_clients[%d]", i), "not a valid network"))
		}
	}
	if c.TCPCongestion != "" && !validCongestion(c.TCPCongestion) {
		errs = append(errs, field.Errorf("tcp_congestion", "%q is not a congestion control name (letters, digits, _; at most 15)", c.TCPCongestion))
	}
	for i, port := range c.ConnectPorts {
		if port < 1 || port > 65535 {
			errs = append(errs, field.Errorf(fmt.Sprintf("connect_ports[%d]", i), "port %d is not from 1 to 65535", port))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial_timeout", c.DialTimeout},
		{"tls_handshake_timeout", c.TLSHandshakeTimeout},
		{"response_header_timeout", c.ResponseHeaderTimeout},
		{"idle_conn_timeout", c.IdleConnTimeout},
		{"tunnel_idle_timeout", c.TunnelIdleTimeout},
		{"read_header_timeout", c.ReadHeaderTimeout},
		{"request_body_timeout", c.RequestBodyTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, field.Errorf(d.name, "must not be negative"))
		}
	}
	if c.MaxIdleConnsPerHost < 0 {
		errs = append(errs, field.Errorf("max_idle_conns_per_host", "must not be negative"))
	}
	if c.MaxIdleConns < 0 {
		errs = append(errs, field.Errorf("max_idle_conns", "must not be negative"))
	}
	if c.MaxConns < -1 {
		errs = append(errs, field.Errorf("max_conns", "must be a number of connections, 0 (derived from the descriptor limit) or -1 (unlimited)"))
	}
	if c.MaxConnsPerClient < 0 {
		errs = append(errs, field.Errorf("max_conns_per_client", "must not be negative"))
	}
	if c.LeafCacheSize < 0 {
		errs = append(errs, field.Errorf("leaf_cache_size", "must not be negative"))
	}
	if c.SNIPeekTimeout < 0 {
		errs = append(errs, field.Errorf("sni_peek_timeout", "must not be negative"))
	}
	if (c.CACert == "") != (c.CAKey == "") {
		errs = append(errs, field.Errorf("ca_key", "ca_cert and ca_key go together"))
	}
	for i, pf := range c.CAClients {
		if !pf.IsValid() {
			errs = append(errs, field.Errorf(fmt.Sprintf("ca_clients[%d]", i), "not a valid network"))
		}
	}
	return append(errs, c.School.Validate()...)
}

// validCongestion reports whether name can be a Linux TCP congestion control
// name (TCP_CA_NAME_MAX is 16 bytes with the final NUL). Whether the kernel
// has it is known when a listener opens.
func validCongestion(name string) bool {
	if len(name) == 0 || len(name) > 15 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// validateListen checks a listener address "host:port" at path p.
func validateListen(p, a string) []field.Error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return []field.Error{field.Errorf(p, "%q is not host:port", a)}
	}
	var errs []field.Error
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			errs = append(errs, field.Errorf(p, "host %q is not an IP address", host))
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, field.Errorf(p, "port %q is not a number from 0 to 65535", port))
	}
	return errs
}

// WithDefaults returns a copy of c (nil means an empty section) with every zero
// field set to its documented default.
func (c *Config) WithDefaults() *Config {
	var d Config
	if c != nil {
		d = *c
	}
	if len(d.Listen) == 0 {
		d.Listen = []string{DefaultListen}
	}
	if len(d.AllowClients) == 0 {
		d.AllowClients = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if len(d.ConnectPorts) == 0 {
		d.ConnectPorts = []int{443}
	}
	setDur := func(p *time.Duration, def time.Duration) {
		if *p == 0 {
			*p = def
		}
	}
	setDur(&d.DialTimeout, DefaultDialTimeout)
	setDur(&d.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	setDur(&d.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDur(&d.IdleConnTimeout, DefaultIdleConnTimeout)
	setDur(&d.TunnelIdleTimeout, DefaultTunnelIdleTimeout)
	setDur(&d.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&d.RequestBodyTimeout, DefaultRequestBodyTimeout)
	if d.MaxIdleConnsPerHost == 0 {
		d.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if d.MaxIdleConns == 0 {
		d.MaxIdleConns = DefaultMaxIdleConns
	}
	if d.LeafCacheSize == 0 {
		d.LeafCacheSize = certs.DefaultLeafCacheSize
	}
	setDur(&d.SNIPeekTimeout, DefaultSNIPeekTimeout)
	return &d
}

// TransportConfig returns the upstream transport settings of c (defaults applied),
// for NewTransport.
func (c *Config) TransportConfig() TransportConfig {
	d := c.WithDefaults()
	return TransportConfig{
		DialTimeout:           d.DialTimeout,
		TLSHandshakeTimeout:   d.TLSHandshakeTimeout,
		ResponseHeaderTimeout: d.ResponseHeaderTimeout,
		IdleConnTimeout:       d.IdleConnTimeout,
		MaxIdleConnsPerHost:   d.MaxIdleConnsPerHost,
		MaxIdleConns:          d.MaxIdleConns,
	}
}
