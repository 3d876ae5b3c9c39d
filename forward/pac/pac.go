// Package pac owns proxy auto-configuration: it generates the PAC file
// (FindProxyForURL) that sends internal names and networks direct and
// everything else through Portcullis, and serves it as /proxy.pac and
// /wpad.dat with the application/x-ns-proxy-autoconfig content type.
//
// The generated script makes no DNS lookups unless Config.ResolveNames is set:
// plain host names and listed domains are decided on the name alone, and
// direct_cidrs apply to hosts written as IP addresses. (A PAC that calls
// isInNet on a name makes the browser resolve every host it visits, which is
// slow, leaks the names to the local resolver and fails for names only the
// proxy can resolve.)
package pac

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Config is the pac section of the policy file.
type Config struct {
	// Proxy is the host:port browsers use to reach the proxy, e.g.
	// "10.0.0.1:3128" or "proxy.school.lan:3128". Empty: derived by the
	// caller (the proxyHostPort argument of Generate).
	Proxy string `yaml:"proxy"`
	// DirectDomains are reached without the proxy: "school.lan" covers the
	// domain and all its subdomains (a leading "." means the same); an entry
	// with * or ? is a shell pattern matched against the whole host name
	// (shExpMatch), e.g. "intranet-*.example.org".
	DirectDomains []string `yaml:"direct_domains"`
	// DirectCIDRs are networks reached without the proxy, IPv4 or IPv6, e.g.
	// 10.0.0.0/8, fd00::/8. They apply to hosts written as addresses, and to
	// names only when ResolveNames is set.
	DirectCIDRs []netip.Prefix `yaml:"direct_cidrs"`
	// DirectPlainHostnames sends dotless names ("wiki", "printer") direct.
	// Default false: they go through the proxy like any other name.
	DirectPlainHostnames bool `yaml:"direct_plain_hostnames"`
	// ResolveNames makes the browser resolve names that no domain rule
	// decided and compare the addresses with DirectCIDRs (dnsResolveEx where
	// the browser has it, else dnsResolve, IPv4 only). Default false: no DNS
	// lookups from the PAC script.
	ResolveNames bool `yaml:"resolve_names"`
	// FallbackDirect appends "; DIRECT" so browsers go direct when the proxy
	// is unreachable. Default false: a filtering proxy must not be bypassed
	// by making it unreachable.
	FallbackDirect bool `yaml:"fallback_direct"`
}

// Validate reports problems with c; paths are relative to c.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	if c.Proxy != "" {
		if err := checkHostPort(c.Proxy); err != nil {
			errs = append(errs, field.Errorf("proxy", "%v", err))
		}
	}
	for i, d := range c.DirectDomains {
		if _, err := normDomain(d); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("direct_domains[%d]", i), "%v", err))
		}
	}
	for i, p := range c.DirectCIDRs {
		if !p.IsValid() {
			errs = append(errs, field.Errorf(fmt.Sprintf("direct_cidrs[%d]", i), "invalid network"))
		}
	}
	return errs
}

// checkHostPort accepts "host:port" with a DNS name or an IP address
// (IPv6 in brackets) and a port in 1–65535.
func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %v", hp, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", hp)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		if strings.Contains(host, "%") {
			return fmt.Errorf("%q: no zone in the proxy address", hp)
		}
		return nil
	}
	if _, err := normDomain(host); err != nil || strings.ContainsAny(host, "*?") {
		return fmt.Errorf("%q: bad host name", hp)
	}
	return nil
}

// normDomain lowercases d, drops a leading and a trailing dot, and checks that
// it holds only letters, digits, '-', '_', '.', and the pattern characters * and ?.
func normDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d)), "."), ".")
	if d == "" {
		return "", fmt.Errorf("empty domain")
	}
	if len(d) > 253 {
		return "", fmt.Errorf("domain longer than 253 characters")
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.*?", r)) {
			return "", fmt.Errorf("%q: only letters, digits, '-', '_', '.', '*' and '?' allowed", d)
		}
	}
	if strings.Contains(d, "..") {
		return "", fmt.Errorf("%q: empty label", d)
	}
	return d, nil
}

// Generate returns the PAC script for cfg. The proxy is cfg.Proxy, or
// proxyHostPort when cfg.Proxy is empty (for example the proxy listener's
// address as clients see it). The output is deterministic.
func Generate(cfg Config, proxyHostPort string) ([]byte, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("pac: %v", errs[0])
	}
	hp := cfg.Proxy
	if hp == "" {
		hp = proxyHostPort
	}
	if hp == "" {
		return nil, fmt.Errorf("pac: no proxy address: set proxy or pass the listener's address")
	}
	if err := checkHostPort(hp); err != nil {
		return nil, fmt.Errorf("pac: %v", err)
	}
	ret := "PROXY " + hp
	if cfg.FallbackDirect {
		ret += "; DIRECT"
	}
	var domains, patterns []string
	seen := map[string]bool{}
	for _, d := range cfg.DirectDomains {
		d, _ = normDomain(d)
		if seen[d] {
			continue
		}
		seen[d] = true
		if strings.ContainsAny(d, "*?") {
			patterns = append(patterns, d)
		} else {
			domains = append(domains, d)
		}
	}
	var nets4 [][2]string
	var nets6 []string
	var words6 [][9]int
	for _, p := range cfg.DirectCIDRs {
		p = p.Masked()
		if p.Addr().Is4() {
			nets4 = append(nets4, [2]string{p.Addr().String(), maskString(p.Bits())})
			continue
		}
		nets6 = append(nets6, p.String())
		a := p.Addr().As16()
		var w [9]int
		for i := 0; i < 8; i++ {
			w[i] = int(a[2*i])<<8 | int(a[2*i+1])
		}
		w[8] = p.Bits()
		words6 = append(words6, w)
	}
	var b strings.Builder
	b.WriteString("// Proxy auto-configuration generated by Portcullis.\n")
	b.WriteString("// Direct: ")
	var parts []string
	if cfg.DirectPlainHostnames {
		parts = append(parts, "plain host names")
	}
	if len(domains)+len(patterns) > 0 {
		parts = append(parts, "listed domains")
	}
	if len(nets4)+len(nets6) > 0 {
		if cfg.ResolveNames {
			parts = append(parts, "listed networks (names resolved)")
		} else {
			parts = append(parts, "listed networks (IP-address hosts only)")
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing")
	}
	b.WriteString(strings.Join(parts, ", ") + ". Everything else: " + ret + ".\n")
	fmt.Fprintf(&b, "var portcullisProxy = %s;\n", js(ret))
	fmt.Fprintf(&b, "var portcullisPlainDirect = %t;\n", cfg.DirectPlainHostnames)
	fmt.Fprintf(&b, "var portcullisResolve = %t;\n", cfg.ResolveNames)
	fmt.Fprintf(&b, "var portcullisDomains = %s;\n", js(nonNil(domains)))
	fmt.Fprintf(&b, "var portcullisPatterns = %s;\n", js(nonNil(patterns)))
	fmt.Fprintf(&b, "var portcullisNets4 = %s;\n", js(nonNil(nets4)))
	fmt.Fprintf(&b, "var portcullisNets6 = %s;\n", js(nonNil(nets6)))
	fmt.Fprintf(&b, "var portcullisWords6 = %s;\n", js(nonNil(words6)))
	b.WriteString(script)
	return []byte(b.String()), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// js renders v as a JavaScript literal (JSON is a subset of JavaScript, and
// encoding/json escapes the characters that could end a string early).
func js(v any) string {
	out, err := json.Marshal(v)
	if err != nil { // unreachable for the strings and ints passed here
		return "null"
	}
	return string(out)
}

func maskString(bits int) string {
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}
