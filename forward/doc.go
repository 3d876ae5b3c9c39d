// Package forward owns forward mode, the door browsers and tools use as their HTTP
// proxy: absolute-form HTTP relayed with bodies streamed both ways, CONNECT tunnels
// (allowed ports, kernel-side copies, idle timeouts, tracked for reload and
// shutdown), the client allow-list, loop detection, hop-by-hop removal, block pages
// and short proxy error pages, and one access-log entry per request or tunnel.
//
// It wraps github.com/elazarl/goproxy as DESIGN.md asks: our own transport and
// dialers with timeouts, no environment proxies, no error text echoed to clients,
// and every decision taken by the policy (rules.Evaluator) from rules.Facts, never
// by goproxy's host conditions.
//
// HTTPS: an allowed CONNECT has its ClientHello peeked (never answered) and the
// SNI checked against the policy; the peeked bytes are replayed so the tunnel is
// byte-identical. With a CA (CreateCA, LoadCA), an inspect verdict terminates TLS
// through goproxy's MITM with leaves from a shared bounded cache (certs.Leaves), and each
// request inside is decided exactly like plain HTTP; a blocked site can be shown
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
