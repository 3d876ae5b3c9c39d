// Package forward owns forward mode, the door browsers and tools use as their HTTP
// proxy: absolute-form HTTP relayed with bodies streamed both ways, CONNECT tunnels
// (allowed ports, kernel-side copies, idle timeouts, tracked for reload and
// shutdown), the client allow-list, loop detection, hop-by-hop removal, block pages
// and short proxy error pages, and one access-log entry per request or tunnel.
//
// Plain HTTP is relayed by internal/relay through the door's transport (Options.
// Transport), with the response checks as relay's hook; every decision is taken
// by the policy (rules.Evaluator) from rules.Facts.
//
// HTTPS: an allowed CONNECT has its ClientHello peeked (never answered) and the
// SNI checked against the policy; the peeked bytes are replayed so the tunnel is
// byte-identical. With a CA (certs.CreateCA, certs.LoadCA), an inspect verdict
// terminates TLS with leaves from a shared bounded cache (certs.Leaves) and serves
// the requests inside with internal/h1 or internal/h2 (as the client negotiates),
// each decided and relayed exactly like plain HTTP; a blocked site can be shown
// its block page over TLS to clients known to trust the CA (Config.CAClients).
//
// School deployments (Config's inlined School, school.go): proxy sign-in
// (Options.Auth: 407, 429 from the limiter, the identity carried by a tunnel into
// its inspected requests), SafeSearch per group without inspection (a CONNECT to a
// search host is dialed to filter.SafeSearchTarget's address), file-type and
// phrase checks on responses with the block page, and the PAC file on the proxy
// port (AdminPACHandler for the admin listener).
//
// The engine builds a Proxy with New on every policy reload, passing the objects
// that must outlive a reload (Tunnels, the Transport, certs.Leaves) through Options, and serves it
// with an internal/h1 Server whose ReadHeaderTimeout is Proxy.ReadHeaderTimeout (no
// ReadTimeout or WriteTimeout, which would cut tunnels and long downloads).
package forward
