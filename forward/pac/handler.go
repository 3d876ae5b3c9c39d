package pac

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ContentType is the media type of PAC files.
const ContentType = "application/x-ns-proxy-autoconfig"

// Handler serves body at /proxy.pac and /wpad.dat (GET and HEAD, with an ETag
// so browsers can revalidate, and Cache-Control max-age=300), 404 for any other
// path and 405 for other methods. Mount it on the proxy's non-proxy handler
// (relative-URL requests) and on the admin listener.
func Handler(body []byte) http.Handler {
	body = bytes.Clone(body)
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/proxy.pac" && r.URL.Path != "/wpad.dat" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ContentType)
		h.Set("Cache-Control", "max-age=300")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// maxDerived bounds the PAC bodies DerivedHandler keeps, one per local
// address clients reach it on.
const maxDerived = 64

// DerivedHandler serves the PAC for cfg like Handler, naming as the proxy
// cfg.Proxy if set, else the address each browser reached this server on
// (the connection's local IP, http.LocalAddrContextKey) with proxyPort. Use it
// when the proxy listens on an unspecified address (0.0.0.0, [::]) and no
// proxy name is configured: a client on 10.0.0.0/8 gets "PROXY 10.0.0.1:PORT",
// one reaching the server over IPv6 gets its IPv6 address. Bodies are generated
// once per local address (at most 64 kept).
func DerivedHandler(cfg Config, proxyPort uint16) (http.Handler, error) {
	if cfg.Proxy != "" {
		body, err := Generate(cfg, "")
		if err != nil {
			return nil, err
		}
		return Handler(body), nil
	}
	if proxyPort == 0 {
		return nil, fmt.Errorf("pac: proxy port 0")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("pac: %v", errs[0])
	}
	var mu sync.Mutex
	handlers := map[netip.Addr]http.Handler{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		ap, err := netip.ParseAddrPort(fmt.Sprint(local))
		if local == nil || err != nil {
			http.Error(w, "no local address", http.StatusInternalServerError)
			return
		}
		ip := ap.Addr().Unmap().WithZone("")
		mu.Lock()
		h := handlers[ip]
		if h == nil {
			body, err := Generate(cfg, netip.AddrPortFrom(ip, proxyPort).String())
			if err != nil { // unreachable: cfg validated, address well formed
				mu.Unlock()
				http.Error(w, "cannot generate the PAC file", http.StatusInternalServerError)
				return
			}
			h = Handler(body)
			if len(handlers) >= maxDerived {
				clear(handlers)
			}
			handlers[ip] = h
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	}), nil
}
