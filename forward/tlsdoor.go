package forward

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/rules"
)

// The forward door over TLS (forward.tls_listen): an HTTPS proxy. The engine
// serves TLSHandler on those listeners with HTTP/1.1 and HTTP/2 (ALPN); the
// requests take the door's own path (sign-in, rules, limits, the access log,
// with Entry.TLS set). CONNECT over an HTTP/2 stream is relayed by the tunnel
// code through a net.Conn made of the stream (tlsstream.go).
//
// With probe resistance (forward.tls_probe_resistance) a client that has not
// signed in never learns that a proxy listens there: every request it sends
// (proxy requests, CONNECT, requests for the proxy's own pages, clients
// outside allow_clients) is answered by Options.ProbeSite — the reverse
// door's web site or a static page — exactly as that site answers it, and
// never with a 407, a Proxy-Authenticate field or a page of the proxy's. Only
// a request for the secret host (ProbeResistance.SecretHost) gets the 407
// that makes a browser ask for the password.

// Probe resistance sites.
const (
	ProbeSiteReverse = "reverse" // the reverse door's web site
	ProbeSitePage    = "page"    // ProbeResistance.PageFile, for every path
)

// ProbeResistance is the forward.tls_probe_resistance section.
type ProbeResistance struct {
	// Site is what a client that has not signed in sees: "reverse" (the
	// reverse door's site, which the policy must then have) or "page" (PageFile).
	Site string `yaml:"site"`
	// PageFile is the HTML page served for every GET and HEAD with site: page
	// (relative to the policy file); other methods get 405.
	PageFile string `yaml:"page_file"`
	// SecretHost is a name that exists nowhere else: a request for it through
	// the proxy without credentials gets the 407 challenge, so a browser asks
	// for the password and then sends it with every request. Signed in, a
	// request for it gets a page saying so; it is never resolved or dialed.
	// "": no name (clients must send credentials unasked, as curl does).
	SecretHost string `yaml:"secret_host"`
}

// validateTLS checks tls_listen, tls (a certs.Config, as the reverse door's
// reverse.tls) and tls_probe_resistance, at paths relative to the forward
// section.
func (c *Config) validateTLS() []field.Error {
	var errs []field.Error
	for i, a := range c.TLSListen {
		errs = append(errs, validateListen(fmt.Sprintf("tls_listen[%d]", i), a)...)
	}
	errs = append(errs, field.Prefix("tls", c.TLS.Validate(len(c.TLSListen) > 0))...)
	if c.TLS.Mode == certs.ModeACME {
		if len(c.TLS.Names) == 0 {
			errs = append(errs, field.Errorf("tls.names", "required with mode acme: the proxy's public names, which clients put in --proxy https://NAME:PORT"))
		}
		if slices.Contains(c.TLS.Challenges, certs.ChallengeHTTP01) && len(c.Listen) == 0 {
			errs = append(errs, field.Errorf("tls.challenges", "http-01 needs a plain listener (forward.listen) reachable on port 80 of the names"))
		}
	}
	pr := c.TLSProbeResistance
	if pr == nil {
		return errs
	}
	const at = "tls_probe_resistance"
	if len(c.TLSListen) == 0 {
		errs = append(errs, field.Errorf(at, "needs tls_listen (probe resistance is for the TLS listeners)"))
	}
	if !c.Auth.Enabled() {
		errs = append(errs, field.Errorf(at, "needs forward.auth: without sign-in every client is a proxy user, and nothing is hidden"))
	}
	switch pr.Site {
	case ProbeSiteReverse:
		if pr.PageFile != "" {
			errs = append(errs, field.Errorf(field.Join(at, "page_file"), "only with site: page"))
		}
	case ProbeSitePage:
		if pr.PageFile == "" {
			errs = append(errs, field.Errorf(field.Join(at, "page_file"), "required with site: page"))
		}
	default:
		errs = append(errs, field.Errorf(field.Join(at, "site"), "want reverse or page, got %q", pr.Site))
	}
	if pr.SecretHost != "" {
		if n, err := rules.CanonicalName(pr.SecretHost); err != nil {
			errs = append(errs, field.Errorf(field.Join(at, "secret_host"), "%v", err))
		} else if _, err := netip.ParseAddr(n); err == nil || !strings.Contains(n, ".") {
			errs = append(errs, field.Errorf(field.Join(at, "secret_host"), "want a host name with a dot, such as a long random label under a domain of yours, got %q", pr.SecretHost))
		}
	}
	return errs
}

// TLSHandler is the handler of the door's TLS listeners: the door itself,
// with the access log's TLS mark and probe resistance when the policy asks
// for it.
func (p *Proxy) TLSHandler() http.Handler { return tlsDoor{p} }

type tlsDoor struct{ p *Proxy }

func (d tlsDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 {
		w = streamWriter{w}
	}
	d.p.serve(w, r, true)
}

// streamWriter drops the "Connection: close" the door puts on some answers
// (a refused CONNECT, an upstream error) to end an HTTP/1.1 connection: on
// HTTP/2, net/http reads it as a reason to send GOAWAY, which would end the
// client's other streams' connection for one refused request.
type streamWriter struct{ http.ResponseWriter }

// WriteHeader implements http.ResponseWriter.
func (w streamWriter) WriteHeader(code int) {
	w.Header().Del("Connection")
	w.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher.
func (w streamWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hides reports whether x arrived on a TLS listener with probe resistance.
func (p *Proxy) hides(x *exchange) bool { return x.entry.TLS && p.probe != nil }

// conceal answers r as the probe-resistance site does and logs it under the
// rule "probe_resistance" (the site's own door logs it too, for the reverse
// site). The credentials the client may have sent never reach the site.
func (p *Proxy) conceal(x *exchange, r *http.Request) {
	x.entry.Rule = "probe_resistance"
	if x.entry.Error == "" {
		x.entry.Error = "not signed in"
	}
	r.Header.Del("Proxy-Authorization")
	p.probe.ServeHTTP(&siteWriter{ResponseWriter: x.w.ResponseWriter, e: &x.entry}, r)
}

// siteWriter records the site's status and body bytes in the access-log
// entry and changes nothing else: the door's respWriter would flush a
// response without Content-Length at every write, which the site's own
// listener does not (a difference a probe could see).
type siteWriter struct {
	http.ResponseWriter
	e *accesslog.Entry
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *siteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader records the final status.
func (w *siteWriter) WriteHeader(code int) {
	if w.e.Status == 0 && code >= 200 {
		w.e.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts p.
func (w *siteWriter) Write(p []byte) (int, error) {
	if w.e.Status == 0 {
		w.e.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.e.BytesOut += int64(n)
	return n, err
}

// secretHost reports whether r asks the proxy for the probe-resistance secret
// host (any port).
func (p *Proxy) secretHost(r *http.Request) bool {
	if p.secret == "" {
		return false
	}
	target := r.Host
	if r.Method != http.MethodConnect {
		target = r.URL.Host
	}
	host, _ := rules.SplitHostPort(target)
	return strings.EqualFold(strings.TrimSuffix(host, "."), p.secret)
}

// signedIn answers a signed-in request for the secret host: a page saying so
// for a plain request, 404 for a CONNECT (a browser shows no CONNECT page).
// The secret host is never resolved or dialed.
func (p *Proxy) signedIn(x *exchange, r *http.Request) {
	x.entry.Rule = "probe_resistance_secret_host"
	if r.Method == http.MethodConnect {
		p.page(&x.w, r, http.StatusNotFound, "You are signed in to this proxy. Open http://"+p.secret+"/ to see this page.")
		return
	}
	p.page(&x.w, r, http.StatusOK, "You are signed in to this proxy: your browser now sends your password with every request through it.")
}

// asProxyRequest turns a request that arrived as an HTTP/2 stream on a TLS
// listener into the absolute form when it is a proxy request. HTTP/2 has no
// absolute form: a client sends a proxied request with the target as its
// :authority and the target's scheme as :scheme (RFC 9113 §8.3.1), and the
// server keeps only the path in r.URL; it sets r.TLS only for :scheme https.
// So a stream without r.TLS is a proxied http:// request. One with :scheme
// https is the proxy's own when its authority is: the server name the client
// asked for, a name of forward.tls.names, "localhost", or the listener's
// address; else it asks the proxy for an https:// URL.
func (p *Proxy) asProxyRequest(r *http.Request) {
	if r.ProtoMajor != 2 || r.Method == http.MethodConnect || r.URL.IsAbs() || r.Host == "" {
		return
	}
	if r.TLS == nil {
		r.URL.Scheme, r.URL.Host = "http", r.Host
		return
	}
	host, port := rules.SplitHostPort(r.Host)
	host = strings.TrimSuffix(host, ".")
	if host == "localhost" || (r.TLS.ServerName != "" && strings.EqualFold(host, r.TLS.ServerName)) {
		return
	}
	for _, n := range p.cfg.TLS.Names {
		if strings.EqualFold(n, host) || (strings.HasPrefix(n, "*.") && strings.HasSuffix(host, n[1:]) && !strings.Contains(strings.TrimSuffix(host, n[1:]), ".")) {
			return
		}
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.Unmap() == ap.Addr().Unmap() &&
				(port == 0 || port == ap.Port()) {
				return
			}
		}
	}
	r.URL.Scheme, r.URL.Host = "https", r.Host
}

// StaticSite serves page (HTML) for every GET and HEAD whatever the path, with
// the conditional and range handling of a file server, and 405 with Allow
// for every other method, CONNECT included: a one-page web site for probe
// resistance's site: page.
func StaticSite(page []byte, modified time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", modified, bytes.NewReader(page))
	})
}

// concealSignIn answers a request whose sign-in failed (no or wrong
// credentials, a locked-out user, a directory outage) as the probe-resistance
// site when x arrived on a hiding TLS listener and r is not for the secret
// host, and reports whether it did.
func (p *Proxy) concealSignIn(x *exchange, r *http.Request) bool {
	if !p.hides(x) || p.secretHost(r) {
		return false
	}
	p.conceal(x, r)
	return true
}
