// Package cluster owns the state several Portcullis nodes share on Redis (standalone,
// Sentinel or Redis Cluster): per-client rate limits counted across nodes, the
// sign-in limiter's counters, a shared cache tier below each node's memory cache,
// purges and invalidations broadcast to every node, and a registry of the nodes that
// are alive.
//
// Redis is never on a request's critical path where that can be avoided, and Redis
// failing is never an outage: every operation is bounded by the configured timeout,
// a failure marks the cluster down (logged once, counted in metrics, shown in /readyz
// detail) and every user of it falls back to the node's local state until Redis
// answers again, which a background probe notices by itself.
//
// Rate limits are one token bucket per key (route and client) in Redis, kept as a
// GCRA theoretical arrival time on Redis's clock by a small Lua script. A node
// leases a few tokens ahead of need (about 50 ms of the rate, shared among the live
// nodes) and admits from its lease, asking for the next one when half is spent, so
// a request never waits on Redis. A key a node holds no lease for yet (a new
// client) is admitted up to the node's share of the burst and charged to the bucket
// with the next lease; once a lease comes back short (the bucket is empty) the node
// admits only what it leases. The cluster-wide count therefore stays within the
// bucket but for those first requests.
package cluster
