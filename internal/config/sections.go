package config

import (
	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/cluster"
	"github.com/portcullis/portcullis/internal/dnsserver"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/reverse"
)

// Sections holds the parts of the policy file owned by other packages. Each is that
// package's Config; nil means the section is absent (that door is off).
type Sections struct {
	// Forward is the forward proxy door.
	Forward *forward.Config `yaml:"forward"`
	// Profiles are named anonymize profiles, in addition to the built-in elite,
	// anonymous, transparent and privacy.
	Profiles map[string]*anonymize.ProfileConfig `yaml:"profiles"`
	// Resolver is how Portcullis resolves and dials destinations (upstreams, cache,
	// egress guard), for every door.
	Resolver *resolver.Config `yaml:"resolver"`
	// Pools are the upstream pools reverse routes (and rules) send requests to.
	Pools map[string]*pool.Config `yaml:"pools"`
	// Reverse is the reverse proxy door.
	Reverse *reverse.Config `yaml:"reverse"`
	// Cache is the shared HTTP cache; absent means nothing is cached.
	Cache *cache.Config `yaml:"cache"`
	// CachePolicies are named cache policies that reverse routes and rules use.
	CachePolicies map[string]*cache.Policy `yaml:"cache_policies"`
	// DNS is the DNS door: filtering server and GSLB responder.
	DNS *dnsserver.Config `yaml:"dns"`
	// Admin is the admin listener and the access log.
	Admin *admin.Config `yaml:"admin"`
	// Cluster shares limits, sign-in counts, a cache tier and purges with other
	// nodes on Redis; absent means this node stands alone.
	Cluster *cluster.Config `yaml:"cluster"`
}
