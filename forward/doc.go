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
// The engine builds a Proxy with New on every policy reload, passing the objects
// that must outlive a reload (Tunnels, the Transport) through Options, and serves it
// with an http.Server whose ReadHeaderTimeout is Proxy.ReadHeaderTimeout (no
// ReadTimeout or WriteTimeout, which would cut tunnels and long downloads).
package forward
