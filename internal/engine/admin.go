package engine

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/forward"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/admin"
)

// observability is the engine's access log, metrics and status counters: one
// accesslog.Entry per request fans out to all three. It outlives reloads; the access log
// file is reopened only when its settings change.
type observability struct {
	registry *prometheus.Registry
	metrics  *admin.Metrics
	status   *admin.Status

	mu      sync.Mutex
	logCfg  accesslog.Config
	current atomic.Pointer[accesslog.Writer]
	fanout  accesslog.Logger
	stdout  io.Writer // where a log without a path goes; nil: standard output
}

func newObservability(e *Engine) *observability {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The status counters take an entry's own time (the door read the clock
	// for it) unless a test gave the engine its clock.
	var statusClock func() time.Time
	if e.clockGiven {
		statusClock = e.opts.Now
	}
	o := &observability{registry: reg, metrics: admin.NewMetrics(reg), status: admin.NewStatus(statusClock), stdout: e.opts.AccessLog}
	o.fanout = accesslog.Multi(accessLogSwitch{o}, o.metrics, o.status)
	return o
}

// accessLogSwitch forwards to whichever access log is current.
type accessLogSwitch struct{ o *observability }

func (s accessLogSwitch) Log(e *accesslog.Entry) {
	if a := s.o.current.Load(); a != nil {
		a.Log(e)
	}
}

// WantsDetail implements accesslog.DetailLogger: a log is on.
func (s accessLogSwitch) WantsDetail() bool { return s.o.current.Load() != nil }

// prepareLog opens, into g, the access log cfg describes when the settings
// changed; the running log stays current until g is committed.
func (o *observability) prepareLog(cfg accesslog.Config, g *staged) error {
	o.mu.Lock()
	unchanged := (o.current.Load() != nil || cfg.Off) && reflect.DeepEqual(cfg, o.logCfg)
	o.mu.Unlock()
	if unchanged {
		return nil
	}
	var a *accesslog.Writer
	var err error
	switch {
	case cfg.Off:
		// no log: a nil current drops entries before they are formatted
	case cfg.Path == "" && o.stdout != nil:
		a, err = accesslog.NewWriter(cfg, o.stdout)
	default:
		a, err = accesslog.Open(cfg)
	}
	if err != nil {
		return err
	}
	g.logSet, g.log, g.logCfg = true, a, cfg
	return nil
}

func (o *observability) reopen() error {
	if a := o.current.Load(); a != nil {
		return a.Reopen()
	}
	return nil
}

func (o *observability) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if a := o.current.Swap(nil); a != nil {
		a.Close()
	}
}

// buildAdmin opens the access log st asks for and builds the admin listener's handler.
func (e *Engine) buildAdmin(st *state) error {
	cfg := st.file.Policy.Admin
	var logCfg accesslog.Config
	if cfg != nil {
		logCfg = cfg.Log
		logCfg.Path = st.file.Resolve(logCfg.Path) // relative to the policy file, like lists
	}
	if err := e.shared.obs.prepareLog(logCfg, st.stage); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	if cfg == nil || !cfg.Enabled() {
		if cfg != nil && cfg.Listen == "" {
			e.log.Info("no admin listener: set admin.listen (e.g. 127.0.0.1:9090) for the status page and metrics")
		}
		return nil
	}
	extra := map[string]http.Handler{}
	for pattern, h := range e.shared.adminRoutes(st) {
		extra[pattern] = h
	}
	if h, err := forward.AdminPACHandler(st.file.Policy.Forward); err != nil {
		return fmt.Errorf("forward.pac: %w", err)
	} else if h != nil {
		extra["GET /proxy.pac"], extra["GET /wpad.dat"] = h, h
	}
	st.admin = admin.NewServer(admin.ServerOptions{
		Token:    cfg.Token,
		Registry: nodeGatherer{g: e.shared.obs.registry, node: e.shared.nodeName},
		Status:   e.shared.obs.status,
		Ready:    e.ready,
		ReadyDetail: func() []string {
			if c := e.shared.currentCluster(); c != nil && !c.Up() {
				return []string{"degraded: cluster: Redis unreachable (" + c.LastError() + "); limits, sign-in counts and the cache are this node's own until it answers"}
			}
			return nil
		},
		Snapshot: e.snapshot,
		Extra:    extra,
		Logger:   e.log.With("door", "admin"),
	})
	st.listens = append(st.listens, httpListen("admin", cfg.Listen, func(s *state) http.Handler { return s.admin }, nil, nil))
	return nil
}

// ready is /readyz: a policy is loaded, the listeners are bound and each
// of them can accept connections (not out of descriptors, say).
func (e *Engine) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runCtx == nil || len(e.listeners) == 0 {
		return errors.New("listeners not bound yet")
	}
	return e.shared.accepts.Err()
}

// snapshot is what the status page shows of the engine.
func (e *Engine) snapshot() admin.Snapshot {
	st := e.cur.Load()
	snap := admin.Snapshot{Policy: admin.PolicyStatus{Version: strconv.Itoa(st.version), LoadedAt: st.loadedAt}}
	if err := e.LastReloadError(); err != nil {
		snap.Policy.Error = err.Error()
	}
	for _, l := range st.lists.info {
		snap.Lists = append(snap.Lists, admin.ListStatus{Name: l.Name, Entries: l.Entries})
	}
	snap.Pools = e.shared.poolStatus()
	snap.Cache = e.shared.cacheStatus()
	snap.Cluster = e.shared.clusterStatus()
	snap.Certificates = e.certStatus()
	snap.TunnelsOpen = e.shared.tunnels.Len()
	return snap
}
