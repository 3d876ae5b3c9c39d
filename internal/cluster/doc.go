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
// Rate limits are counted in windows as long as the rate takes to fill the burst
// (a sliding-window estimate from the previous and current window, as Cloudflare
// describes it, which behaves like the token bucket a single node uses). A node
// decides from its last view of the window's global count plus what it accepted
// since, multiplied by the number of nodes that count the same key (each is taken
// to accept as many as it does between syncs); a sync loop flushes its counts to
// Redis every SyncInterval as one field per node of a hash per key and window,
// and reads the sums back in the same pipeline. A request never waits on Redis for
// a limit.
package cluster
