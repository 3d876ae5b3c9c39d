package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServerOptions is what the admin listener serves. Every field is optional.
type ServerOptions struct {
	// Token, when set, protects every route but /healthz and /readyz (Extra ones too):
	// "Authorization: Bearer TOKEN", or HTTP basic authentication with TOKEN as the
	// password (any user name), which browsers prompt for. Compared in constant time.
	Token string
	// Registry is served on /metrics; nil disables the route.
	Registry prometheus.Gatherer
	// Status supplies the traffic counters of the page and /status.json.
	Status *Status
	// Ready reports whether the proxy is ready (policy loaded, listeners up); /readyz
	// answers 503 with the error's text when it returns one. Nil means always ready.
	Ready func() error
	// Snapshot supplies pools, cache, policy and lists for the page and /status.json.
	Snapshot func() Snapshot
	// Extra adds routes (ServeMux patterns), e.g. "POST /cache/purge", "GET /ca.pem".
	// They are behind Token too. A pattern that conflicts with a built-in route makes
	// NewServer panic (as ServeMux.Handle does): a programming error caught at startup.
	Extra map[string]http.Handler
	// Logger receives errors while serving; nil discards them.
	Logger *slog.Logger
}

// NewServer returns the admin listener's handler: /metrics, /healthz, /readyz,
// /debug/pprof/, /status.json, the status page on /, and opts.Extra. It uses its own
// ServeMux (never http.DefaultServeMux). The caller serves it, on loopback by default.
func NewServer(opts ServerOptions) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{opts: opts, page: newPage()}
	open := http.NewServeMux()
	open.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok\n")
	})
	open.HandleFunc("GET /readyz", s.readyz)

	mux := http.NewServeMux()
	if opts.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	mux.HandleFunc("GET /{$}", s.statusPage)
	for pattern, h := range opts.Extra {
		mux.Handle(pattern, h)
	}

	var protected http.Handler = mux
	if opts.Token != "" {
		protected = requireToken(opts.Token, mux)
	}
	open.Handle("/", protected)
	return open
}

type server struct {
	opts ServerOptions
	page *page
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
			return
		}
	}
	plain(w, http.StatusOK, "ready\n")
}

// statusDoc is /status.json: the traffic counters and the engine's snapshot.
type statusDoc struct {
	Traffic *StatusReport `json:"traffic"`
	Snapshot
}

func (s *server) doc() *statusDoc {
	d := &statusDoc{Traffic: &StatusReport{}}
	if s.opts.Status != nil {
		d.Traffic = s.opts.Status.Report()
	}
	if s.opts.Snapshot != nil {
		d.Snapshot = s.opts.Snapshot()
	}
	return d
}

func (s *server) statusJSON(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(s.doc())
	if err != nil {
		s.opts.Logger.Error("admin: encoding status", "err", err)
		plain(w, http.StatusInternalServerError, "internal error\n")
		return
	}
	fresh(w, "application/json")
	_, _ = w.Write(body)
}

func (s *server) statusPage(w http.ResponseWriter, _ *http.Request) {
	body, err := s.page.render(s.doc())
	if err != nil {
		s.opts.Logger.Error("admin: rendering status page", "err", err)
		plain(w, http.StatusInternalServerError, "internal error\n")
		return
	}
	h := fresh(w, "text/html; charset=utf-8")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", s.page.csp)
	_, _ = w.Write(body)
}

// fresh sets the headers of a response that must not be cached or sniffed.
func fresh(w http.ResponseWriter, contentType string) http.Header {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	return h
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}

// requireToken admits requests carrying token as a bearer token or basic-auth password.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got string
		if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			got = strings.TrimSpace(auth[7:])
		} else if _, pass, ok := r.BasicAuth(); ok {
			got = pass
		}
		sum := sha256.Sum256([]byte(got))
		if got == "" || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="portcullis admin", charset="UTF-8"`)
			plain(w, http.StatusUnauthorized, "unauthorized\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}
