// Package cache owns Portcullis's shared HTTP cache, used by both doors: an RFC 9111
// shared cache with RFC 5861 stale-while-revalidate and stale-if-error, request
// coalescing, RFC 9211 Cache-Status, and a memory store bounded in bytes with
// scan-resistant S3-FIFO eviction. It is an http.RoundTripper decorator: a door
// attaches the request's Policy with WithPolicy (or uses WrapPolicy) and sends the
// request through the RoundTripper returned by Wrap; requests without an enabled
// policy pass straight through untouched.
//
// What it does, by RFC 9111 section:
//   - §3 storing: only GET responses with a final status other than 206 and 304;
//     not with no-store (request or response; ignored with must-understand when the
//     status is understood), unqualified private, Set-Cookie, Vary: *, or a request
//     with Authorization unless public, s-maxage or must-revalidate (§3.5); only
//     with explicit freshness, a heuristically cacheable status or public.
//     Hop-by-hop fields, fields named by Connection and private="…" fields are not
//     stored.
//   - §4.1 Vary: the request's values of each named field form a secondary key
//     (list whitespace normalised; absent matches only absent); the policy's
//     key_headers act as an implicit Vary. Up to max_variants per URL.
//   - §4.2 freshness: s-maxage, then max-age, then Expires - Date, then 10% of
//     Date - Last-Modified where a heuristic is allowed; invalid values mean stale;
//     Age is computed as §4.2.3 says; the policy's max_ttl caps the lifetime.
//     CDN-Cache-Control (RFC 9213) replaces Cache-Control when present.
//   - §4.3 validation: stale or no-cache responses are revalidated with
//     If-None-Match / If-Modified-Since; a matching 304 updates the stored fields
//     (§3.2, §4.3.4), a non-matching one causes an unconditional request. Clients'
//     own If-None-Match / If-Modified-Since are answered from fresh responses.
//   - §4.4 invalidation: a 2xx/3xx answer to an unsafe method removes the target URI
//     and same-origin Location and Content-Location.
//   - §5.2 request directives: max-age, max-stale, min-fresh, no-cache (and Pragma
//     without Cache-Control), no-store, only-if-cached (504 when nothing fits).
//
// RFC 5861: stale-while-revalidate serves stale and starts one background refresh
// per URL, owned by the Cache and stopped by Close; stale-if-error (response or
// request) serves stale on errors and 500/502/503/504. serve_stale_when_down
// serves stale when the origin is down (dial errors, a connection closed or reset
// without a response, errors matching WithDownError, errors with OriginDown()
// true) unless must-revalidate, proxy-revalidate or
// s-maxage forbid it.
//
// Concurrent requests for a URL that is missing or must be revalidated make one
// origin request; the others wait up to coalesce_timeout for it and are answered
// from what it stored ("collapsed"), or go to the origin themselves when it stored
// nothing usable for them. Bodies are streamed to the client while being stored;
// storing is abandoned beyond max_object_bytes or when the client stops reading.
// A body being stored is held in a buffer that grows with the bytes received,
// each growth drawn from max_bytes (fills in progress may hold half of it, or
// one max_object_bytes object); when the budget is spent the body is relayed
// without being stored.
// Single byte ranges are answered from stored full responses.
//
// Fresh hits at a server: the RoundTripper from WrapPolicy also has
// ServeFresh(w, r, scheme, edit, now), which a reverse door calls before proxying. It
// writes a fresh hit (or the 304 to a client's conditional request) straight to
// the ResponseWriter, byte for byte what the RoundTrip path would have produced,
// without allocating; anything else (miss, validation, stale, range, a request a
// proxy would rewrite in a way the cache looks at) is declined and takes the
// RoundTrip path. On internal/h1's ResponseWriter (SetRawHeader) the stored
// header goes as bytes rendered once per second of age (with the door's Edit,
// origin hiding, made), not through a map.
//
// Files: cache.go (Cache, options, stats), config.go (Config, Policy), roundtrip.go
// (the request flow and hits), fresh.go (ServeFresh), fetch.go (origin requests, coalescing, streaming
// stores, invalidation, background refresh), item.go (stored responses,
// freshness, storability, 304 merging), directives.go (Cache-Control), key.go,
// store.go (S3-FIFO store), coalesce.go, status.go (Cache-Status), purge.go.
package cache
