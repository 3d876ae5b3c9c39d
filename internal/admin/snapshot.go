package admin

import "time"

// Snapshot is the engine's state as the status page and /status.json show it. The
// engine builds one per call of ServerOptions.Snapshot; it must be cheap (counters and
// health flags, no I/O).
type Snapshot struct {
	Pools  []PoolStatus `json:"pools"`
	Cache  *CacheStatus `json:"cache,omitempty"` // nil when no cache is configured
	Policy PolicyStatus `json:"policy"`
	Lists  []ListStatus `json:"lists"`
	// Cluster is the node's view of the cluster; nil when it stands alone.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
	// Certificates are the reverse door's ACME certificates, one per name.
	Certificates []CertStatus `json:"certificates,omitempty"`
	// TunnelsOpen is the number of tunnels open now (CONNECT, SOCKS5, WebSocket
	// relays of the forward door).
	TunnelsOpen int `json:"tunnels_open"`
}

// CertStatus is one name's certificate obtained by ACME. Its fields match
// certs.CertStatus, so the engine can convert with admin.CertStatus(s).
type CertStatus struct {
	Name           string    `json:"name"`
	Issuer         string    `json:"issuer,omitempty"`
	NotAfter       time.Time `json:"not_after,omitzero"`
	DaysLeft       float64   `json:"days_left"`
	OCSPStapled    bool      `json:"ocsp_stapled"`
	OCSPNextUpdate time.Time `json:"ocsp_next_update,omitzero"` // the staple's NextUpdate (zero: no staple, or none given)
	Error          string    `json:"error,omitempty"`
	ErrorAt        time.Time `json:"error_at,omitzero"`
}

// ClusterStatus is the cluster as this node sees it (the engine fills it from
// internal/cluster's Status).
type ClusterStatus struct {
	Node      string        `json:"node"`
	Redis     []string      `json:"redis"`
	Mode      string        `json:"mode"`
	Up        bool          `json:"up"` // false: running on this node's own state
	LastError string        `json:"last_error,omitempty"`
	Failures  uint64        `json:"failures"`
	Shared    []string      `json:"shared"`
	Nodes     []ClusterNode `json:"nodes"`
}

// ClusterNode is one node of the registry.
type ClusterNode struct {
	Node         string    `json:"node"`
	Policy       string    `json:"policy"`
	PolicyLoaded time.Time `json:"policy_loaded,omitzero"`
	ReloadOK     bool      `json:"reload_ok"`
	ReloadError  string    `json:"reload_error,omitempty"`
	Version      string    `json:"version,omitempty"`
	Started      time.Time `json:"started,omitzero"`
	Seen         time.Time `json:"seen,omitzero"`
	Alive        bool      `json:"alive"`
	Self         bool      `json:"self"`
	OlderPolicy  bool      `json:"older_policy"` // runs another policy than the one loaded last
}

// PoolStatus is one upstream pool and its members.
type PoolStatus struct {
	Name    string         `json:"name"`
	Members []MemberStatus `json:"members"`
}

// MemberStatus is one pool member's health and load. Its fields match
// pool.MemberStatus, so the engine can convert with admin.MemberStatus(s).
type MemberStatus struct {
	URL            string    `json:"url"`
	Weight         int       `json:"weight"`
	Healthy        bool      `json:"healthy"`         // selectable now
	CheckHealthy   bool      `json:"check_healthy"`   // active checks' verdict
	Ejected        bool      `json:"ejected"`         // passive ejection in force
	InFlight       int64     `json:"in_flight"`       // requests in flight
	RecentFailures int64     `json:"recent_failures"` // consecutive failed requests
	Failures       int64     `json:"failures"`        // failed requests since start
	LastCheck      time.Time `json:"last_check,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// CacheStatus is the shared cache's counters. Its fields match cache.Stats, so the
// engine can convert with admin.CacheStatus(c.Stats()).
type CacheStatus struct {
	Hits        int64 `json:"hits"`
	Misses      int64 `json:"misses"`
	Stale       int64 `json:"stale"`
	Revalidated int64 `json:"revalidated"`
	Collapsed   int64 `json:"collapsed"`
	Bypass      int64 `json:"bypass"`
	Evictions   int64 `json:"evictions"`
	Bytes       int64 `json:"bytes"`
	Filling     int64 `json:"filling_bytes"`
	Objects     int64 `json:"objects"`
	TierHits    int64 `json:"tier_hits"` // answered from the cluster's shared tier
}

// HitRatio is the share of cacheable lookups answered from the cache (hits and stale
// serves over hits, stale serves, revalidations and misses); 0 when there were none.
func (c *CacheStatus) HitRatio() float64 {
	served := c.Hits + c.Stale
	total := served + c.Misses + c.Revalidated
	if total <= 0 {
		return 0
	}
	return float64(served) / float64(total)
}

// PolicyStatus is the policy in force and the result of the last reload.
type PolicyStatus struct {
	Version  string    `json:"version"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	Error    string    `json:"error,omitempty"` // last reload's error; the old policy keeps serving
}

// ListStatus is one domain/URL list and its size.
type ListStatus struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
}
