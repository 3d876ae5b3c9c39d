package dnsserver

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config/field"
)

// Defaults applied to zero Config fields.
const (
	DefaultListen     = "127.0.0.1:53"
	DefaultTTL        = 60 * time.Second
	DefaultGSLBTTL    = 30 * time.Second
	DefaultSOAMinimum = 30 * time.Second
	// DefaultMaxInFlight is Config.MaxInFlight's default (Unbound's
	// num-queries-per-thread default).
	DefaultMaxInFlight = 1024
	// DefaultMaxInFlightPerClient is Config.MaxInFlightPerClient's default.
	DefaultMaxInFlightPerClient = 128
	// zoneRecordTTL is the TTL of the GSLB zone's SOA and NS records.
	zoneRecordTTL = time.Hour
)

// Block answers (Config.BlockAnswer).
const (
	BlockNXDomain = "nxdomain" // NXDOMAIN with an Extended DNS Error "Blocked" (default)
	BlockAddress  = "address"  // the block page's address for A/AAAA, NODATA for other types
)

// When every site of a GSLB name is down (NameConfig.WhenAllDown).
const (
	AllDownAll      = "all"      // answer with every site's addresses (default)
	AllDownServfail = "servfail" // SERVFAIL
)

// Config is the DNS server's section of the policy file.
type Config struct {
	// Listen lists the addresses served on both UDP and TCP. Default
	// ["127.0.0.1:53"].
	Listen []string `yaml:"listen"`
	// AllowClients lists the client networks the server resolves for (forwarding
	// and SafeSearch); others are REFUSED, so the server is no open resolver. The
	// GSLB zone is answered for everyone. Default: loopback, private (RFC 1918),
	// CGNAT, link-local and unique-local ranges; list 0.0.0.0/0 and ::/0 to serve
	// every client.
	AllowClients []netip.Prefix `yaml:"allow_clients"`
	// BlockAnswer is how a blocked name is answered: "nxdomain" (default) or
	// "address" (BlockAddressV4/V6, the block page's addresses).
	BlockAnswer string `yaml:"block_answer"`
	// BlockAddressV4 answers blocked A queries with block_answer: address.
	// Default 0.0.0.0.
	BlockAddressV4 netip.Addr `yaml:"block_address_v4"`
	// BlockAddressV6 answers blocked AAAA queries with block_answer: address.
	// Default ::.
	BlockAddressV6 netip.Addr `yaml:"block_address_v6"`
	// SafeSearch is enforced for every client; Groups refine it. Default off.
	SafeSearch filter.SafeSearch `yaml:"safesearch"`
	// Groups refine SafeSearch per client group (keyed by group name): a key a
	// group sets replaces the top-level one for its members, a key it leaves out
	// is inherited. A client in several listed groups gets the strictest
	// combination of their settings.
	Groups map[string]GroupConfig `yaml:"groups"`
	// TTL is the TTL of synthetic answers (blocks, SafeSearch CNAMEs). Default 60s.
	TTL time.Duration `yaml:"ttl"`
	// GSLB makes the server authoritative for a zone whose names are answered with
	// the closest healthy site. Off when Zone is "".
	GSLB GSLBConfig `yaml:"gslb"`
	// MaxInFlight bounds the queries waiting for an upstream answer at once (cache
	// misses; a query joining an identical one in flight counts too). A miss
	// beyond it is dropped without an answer, as Unbound does beyond
	// num-queries-per-thread: the client retries later. Cached answers, blocks,
	// SafeSearch and GSLB answers are never held by it. Default 1024.
	MaxInFlight int `yaml:"max_inflight"`
	// MaxInFlightPerClient bounds the same per client address, so that one client
	// cannot take the whole MaxInFlight. Default 128 (at most MaxInFlight).
	MaxInFlightPerClient int `yaml:"max_inflight_per_client"`
}

// GroupConfig is the per-group part of Config.
type GroupConfig struct {
	// SafeSearch for clients of this group: the keys it sets replace the
	// top-level ones, the others are inherited.
	SafeSearch GroupSafeSearch `yaml:"safesearch"`
}

// GroupSafeSearch is a group's refinement of the top-level SafeSearch: a nil
// field (or an empty YouTube) is a key the group leaves out, which it inherits.
type GroupSafeSearch struct {
	// Google: see filter.SafeSearch.Google.
	Google *bool `yaml:"google"`
	// YouTube is "strict", "moderate" or "off"; "" inherits.
	YouTube string `yaml:"youtube"`
	// Bing: see filter.SafeSearch.Bing.
	Bing *bool `yaml:"bing"`
	// DuckDuckGo: see filter.SafeSearch.DuckDuckGo.
	DuckDuckGo *bool `yaml:"duckduckgo"`
}

// Over returns top refined by g: the keys g sets replace top's.
func (g GroupSafeSearch) Over(top filter.SafeSearch) filter.SafeSearch {
	if g.Google != nil {
		top.Google = *g.Google
	}
	if g.YouTube != "" {
		top.YouTube = g.YouTube
	}
	if g.Bing != nil {
		top.Bing = *g.Bing
	}
	if g.DuckDuckGo != nil {
		top.DuckDuckGo = *g.DuckDuckGo
	}
	return top
}

// Warnings reports settings that are valid but probably not meant: a group that
// turns off (or, for YouTube, lowers) a SafeSearch the top level enforces, so its
// members are less protected than clients in no group.
func (c *Config) Warnings() []field.Error {
	var out []field.Error
	top := c.SafeSearch
	for _, g := range sortedKeys(c.Groups) {
		eff := c.Groups[g].SafeSearch.Over(top)
		path := "groups." + g + ".safesearch."
		weaker := func(key, engine string) {
			out = append(out, field.Errorf(path+key, "turns off %s SafeSearch for group %q although the top-level safesearch enforces it for every other client (remove the key to inherit it)", engine, g))
		}
		if top.Google && !eff.Google {
			weaker("google", "Google")
		}
		if top.Bing && !eff.Bing {
			weaker("bing", "Bing")
		}
		if top.DuckDuckGo && !eff.DuckDuckGo {
			weaker("duckduckgo", "DuckDuckGo")
		}
		if youTubeRank(eff.YouTube) < youTubeRank(top.YouTube) {
			out = append(out, field.Errorf(path+"youtube", "lowers YouTube restriction for group %q to %s although the top-level safesearch sets %s (remove the key to inherit it)", g, cmp.Or(eff.YouTube, filter.YouTubeOff), top.YouTube))
		}
	}
	return out
}

func youTubeRank(level string) int {
	switch level {
	case filter.YouTubeStrict:
		return 2
	case filter.YouTubeModerate:
		return 1
	}
	return 0
}

// GSLBConfig describes the zone the GSLB responder is authoritative for.
type GSLBConfig struct {
	// Zone is the zone's apex, e.g. "example.test.". "" disables GSLB; the root
	// zone "." is refused.
	Zone string `yaml:"zone"`
	// TTL of the A/AAAA answers. Default 30s.
	TTL time.Duration `yaml:"ttl"`
	// NS lists the zone's name servers. Default ["ns1.<zone>"].
	NS []string `yaml:"ns"`
	// SOA holds the zone's SOA fields.
	SOA SOAConfig `yaml:"soa"`
	// Names maps a name relative to the zone ("www", "@" for the apex) to its sites.
	Names map[string]NameConfig `yaml:"names"`
	// Regions maps client CIDRs ("10.1.0.0/16") to region names; the longest
	// prefix wins.
	Regions map[string]string `yaml:"regions"`
	// Preference orders site names per client region; "*" is the order for
	// clients in no region. Without a list for its region a client prefers the
	// sites whose region is its own.
	Preference map[string][]string `yaml:"preference"`
}

// SOAConfig holds the fields of the zone's SOA record.
type SOAConfig struct {
	// Mbox is the zone contact as a name. Default "hostmaster.<zone>".
	Mbox string `yaml:"mbox"`
	// Serial of the zone. Default 1.
	Serial int64 `yaml:"serial"`
	// Refresh, Retry and Expire for secondaries. Defaults 1h, 10m, 1w.
	Refresh time.Duration `yaml:"refresh"`
	Retry   time.Duration `yaml:"retry"`
	Expire  time.Duration `yaml:"expire"`
	// Minimum is the negative-caching TTL (RFC 2308). Default 30s.
	Minimum time.Duration `yaml:"minimum"`
}

// NameConfig is one GSLB name.
type NameConfig struct {
	// Sites serving the name.
	Sites []SiteConfig `yaml:"sites"`
	// WhenAllDown is "all" (default: answer every site) or "servfail".
	WhenAllDown string `yaml:"when_all_down"`
}

// SiteConfig is one site of a GSLB name.
type SiteConfig struct {
	// Name identifies the site in Preference lists.
	Name string `yaml:"name"`
	// Pool names the upstream pool whose health decides the site's; "" means
	// always healthy.
	Pool string `yaml:"pool"`
	// Region is the site's location label.
	Region string `yaml:"region"`
	// Addresses are the public IPv4 and IPv6 addresses handed out for the site.
	Addresses []netip.Addr `yaml:"addresses"`
	// Weight for weighted round robin among equally preferred sites; when every
	// weight is 0 all equal sites are answered together. Default 0.
	Weight int `yaml:"weight"`
}

// Validate checks the listen addresses, the block answer, SafeSearch levels and
// the GSLB zone.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	for i, a := range c.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("listen[%d]", i), "%v", err))
		}
	}
	for i, p := range c.AllowClients {
		if !p.IsValid() {
			errs = append(errs, field.Errorf(fmt.Sprintf("allow_clients[%d]", i), "invalid prefix"))
		}
	}
	switch c.BlockAnswer {
	case "", BlockNXDomain, BlockAddress:
	default:
		errs = append(errs, field.Errorf("block_answer", "must be nxdomain or address, not %q", c.BlockAnswer))
	}
	if c.BlockAddressV4.IsValid() && !c.BlockAddressV4.Is4() {
		errs = append(errs, field.Errorf("block_address_v4", "%s is not an IPv4 address", c.BlockAddressV4))
	}
	if c.BlockAddressV6.IsValid() && !c.BlockAddressV6.Is6() {
		errs = append(errs, field.Errorf("block_address_v6", "%s is not an IPv6 address", c.BlockAddressV6))
	}
	errs = append(errs, field.Prefix("safesearch", c.SafeSearch.Validate())...)
	for _, g := range sortedKeys(c.Groups) {
		gc := c.Groups[g]
		switch gc.SafeSearch.YouTube {
		case "", filter.YouTubeOff, filter.YouTubeModerate, filter.YouTubeStrict:
		default:
			errs = append(errs, field.Errorf("groups."+g+".safesearch.youtube", "must be strict, moderate or off, not %q", gc.SafeSearch.YouTube))
		}
	}
	if c.TTL < 0 {
		errs = append(errs, field.Errorf("ttl", "must not be negative"))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, field.Errorf("max_inflight", "must be positive (0: the default, %d)", DefaultMaxInFlight))
	}
	if c.MaxInFlightPerClient < 0 {
		errs = append(errs, field.Errorf("max_inflight_per_client", "must be positive (0: the default, %d)", DefaultMaxInFlightPerClient))
	}
	if c.MaxInFlight > 0 && c.MaxInFlightPerClient > c.MaxInFlight {
		errs = append(errs, field.Errorf("max_inflight_per_client", "is above max_inflight (%d)", c.MaxInFlight))
	}
	errs = append(errs, field.Prefix("gslb", c.GSLB.validate())...)
	return errs
}

func (g *GSLBConfig) validate() []field.Error {
	var errs []field.Error
	if g.Zone == "" {
		if len(g.Names) > 0 {
			errs = append(errs, field.Errorf("zone", "is required when names are given"))
		}
		return errs
	}
	if _, ok := dns.IsDomainName(g.Zone); !ok {
		errs = append(errs, field.Errorf("zone", "%q is not a domain name", g.Zone))
	} else if dns.CanonicalName(g.Zone) == "." {
		errs = append(errs, field.Errorf("zone", "the root zone %q cannot be a GSLB zone (every name would be answered from it and none forwarded): name the zone the sites serve, such as \"example.org.\"", g.Zone))
	}
	if g.TTL < 0 {
		errs = append(errs, field.Errorf("ttl", "must not be negative"))
	}
	for i, ns := range g.NS {
		if _, ok := dns.IsDomainName(ns); !ok {
			errs = append(errs, field.Errorf(fmt.Sprintf("ns[%d]", i), "%q is not a domain name", ns))
		}
	}
	if g.SOA.Serial < 0 || g.SOA.Serial > 1<<32-1 {
		errs = append(errs, field.Errorf("soa.serial", "must be between 0 and 4294967295"))
	}
	sites := map[string]bool{}
	for _, n := range sortedKeys(g.Names) {
		nc := g.Names[n]
		path := "names." + n
		if _, ok := dns.IsDomainName(n); !ok && n != "@" {
			errs = append(errs, field.Errorf(path, "%q is not a relative domain name", n))
		}
		if len(nc.Sites) == 0 {
			errs = append(errs, field.Errorf(field.Join(path, "sites"), "at least one site is required"))
		}
		switch nc.WhenAllDown {
		case "", AllDownAll, AllDownServfail:
		default:
			errs = append(errs, field.Errorf(field.Join(path, "when_all_down"), "must be all or servfail, not %q", nc.WhenAllDown))
		}
		for i, s := range nc.Sites {
			sp := fmt.Sprintf("%s.sites[%d]", path, i)
			if s.Name == "" {
				errs = append(errs, field.Errorf(field.Join(sp, "name"), "is required"))
			}
			sites[s.Name] = true
			if len(s.Addresses) == 0 {
				errs = append(errs, field.Errorf(field.Join(sp, "addresses"), "at least one address is required"))
			}
			for j, a := range s.Addresses {
				if !a.IsValid() {
					errs = append(errs, field.Errorf(fmt.Sprintf("%s.addresses[%d]", sp, j), "invalid address"))
				}
			}
			if s.Weight < 0 {
				errs = append(errs, field.Errorf(field.Join(sp, "weight"), "must not be negative"))
			}
		}
	}
	for _, cidr := range sortedKeys(g.Regions) {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			errs = append(errs, field.Errorf("regions."+cidr, "%v", err))
		}
	}
	for _, region := range sortedKeys(g.Preference) {
		for i, s := range g.Preference[region] {
			if !sites[s] {
				errs = append(errs, field.Errorf(fmt.Sprintf("preference.%s[%d]", region, i), "no site is named %q", s))
			}
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	if len(c.AllowClients) == 0 {
		for _, p := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
			"100.64.0.0/10", "169.254.0.0/16", "fe80::/10", "fc00::/7"} {
			c.AllowClients = append(c.AllowClients, netip.MustParsePrefix(p))
		}
	}
	if c.BlockAnswer == "" {
		c.BlockAnswer = BlockNXDomain
	}
	if !c.BlockAddressV4.IsValid() {
		c.BlockAddressV4 = netip.IPv4Unspecified()
	}
	if !c.BlockAddressV6.IsValid() {
		c.BlockAddressV6 = netip.IPv6Unspecified()
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlightPerClient == 0 {
		c.MaxInFlightPerClient = min(DefaultMaxInFlightPerClient, c.MaxInFlight)
	}
	g := &c.GSLB
	if g.Zone != "" {
		g.Zone = dns.CanonicalName(g.Zone)
		if g.TTL == 0 {
			g.TTL = DefaultGSLBTTL
		}
		if len(g.NS) == 0 {
			g.NS = []string{"ns1." + g.Zone}
		}
		if g.SOA.Mbox == "" {
			g.SOA.Mbox = "hostmaster." + g.Zone
		}
		if g.SOA.Serial == 0 {
			g.SOA.Serial = 1
		}
		g.SOA.Refresh = cmp.Or(g.SOA.Refresh, time.Hour)
		g.SOA.Retry = cmp.Or(g.SOA.Retry, 10*time.Minute)
		g.SOA.Expire = cmp.Or(g.SOA.Expire, 7*24*time.Hour)
		g.SOA.Minimum = cmp.Or(g.SOA.Minimum, DefaultSOAMinimum)
	}
	return c
}

// fqdnIn returns name (relative to zone, "@" for the apex, or absolute with a
// trailing dot) as a lowercased FQDN.
func fqdnIn(name, zone string) string {
	switch {
	case name == "@":
		return zone
	case strings.HasSuffix(name, "."):
		return dns.CanonicalName(name)
	}
	return dns.CanonicalName(name + "." + zone)
}
