// Package engine builds every part of Portcullis from the policy file and runs it: it
// loads and compiles the policy into an immutable state (rules program, lists, door
// handlers), binds the listeners the policy names, and swaps the whole state
// atomically on reload. Requests in flight finish on the state they started with; a
// policy that fails to load is reported and the old state keeps serving. Objects that
// must outlive a reload (tunnels, pools and their health, the cache, the resolver,
// compiled lists, the access log) are owned here and handed to each new state; what a
// new policy changes in them is prepared beside them (stage.go) and put in force only
// when the whole policy has loaded and its listeners are bound, so a reload that fails
// leaves them exactly as they were.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/forward/auth/directory"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/rules"
)

// Options configure an Engine.
type Options struct {
	// PolicyPath is the policy file; "" means DefaultPolicy.
	PolicyPath string
	// DefaultPolicy is the embedded default policy's source.
	DefaultPolicy []byte
	// Logger receives operational logs (not the access log). Required.
	Logger *slog.Logger
	// Now is the clock rules and logs use (tests inject one); default time.Now.
	Now func() time.Time
	// DrainTimeout bounds graceful shutdown (default 30s): in-flight requests and
	// tunnels still open when it passes are cut.
	DrainTimeout time.Duration
	// Watch makes Run poll the policy file and the list files it names, and reload
	// when one changes (size or modification time): `portcullis run --watch`.
	Watch bool
	// WatchInterval is how often Watch polls (default 2s).
	WatchInterval time.Duration
	// AccessLog, when set, receives the access log instead of standard output when
	// the policy names no log file (tests pass io.Discard).
	AccessLog io.Writer
	// DryRun builds the policy without creating anything on disk (the internal CA):
	// for validate and policy explain.
	DryRun bool
}

// Engine runs one policy at a time on its listeners.
type Engine struct {
	opts       Options
	clockGiven bool // Options.Now came from the caller (tests), not time.Now
	log        *slog.Logger

	cur    atomic.Pointer[state]
	shared *shared

	mu        sync.Mutex // serialises reloads and listener changes
	version   int
	lastErr   error
	listeners map[listenKey]*listener
	runCtx    context.Context
	wg        sync.WaitGroup
}

// New loads and compiles the policy. It returns the policy's problems (config.Errors
// for a bad file) without binding anything.
func New(opts Options) (*Engine, error) {
	if opts.Logger == nil {
		return nil, errors.New("engine: Options.Logger is required")
	}
	clockGiven := opts.Now != nil
	if !clockGiven {
		opts.Now = time.Now
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = 2 * time.Second
	}
	e := &Engine{opts: opts, clockGiven: clockGiven, log: opts.Logger, listeners: map[listenKey]*listener{}}
	e.shared = newShared(e)
	// The current shared cache's counters on /metrics (zeros while there is none).
	_ = e.shared.obs.metrics.RegisterCache(func() admin.CacheStatus {
		if cs := e.shared.cacheStatus(); cs != nil {
			return *cs
		}
		return admin.CacheStatus{}
	})
	_ = e.shared.obs.metrics.RegisterCertificates(e.certStatus)
	// Access-log lines of the current log (they restart from 0 when the log settings
	// change, which Prometheus reads as a counter reset).
	for _, c := range []struct {
		name, help string
		get        func(*accesslog.Writer) uint64
	}{
		{"portcullis_access_log_written_lines_total", "Access-log lines written.", (*accesslog.Writer).Written},
		{"portcullis_access_log_dropped_lines_total", "Access-log lines dropped (queue full, write error).", (*accesslog.Writer).Dropped},
	} {
		e.shared.obs.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 {
			if a := e.shared.obs.current.Load(); a != nil {
				return float64(c.get(a))
			}
			return 0
		}))
	}
	f, err := e.loadFile()
	if err != nil {
		return nil, err
	}
	st, err := e.build(f)
	if err != nil {
		e.shared.close()
		return nil, err
	}
	e.version = 1
	st.version = 1
	release := st.commit()
	e.cur.Store(st)
	release()
	e.shared.policyLoaded(st, nil)
	return e, nil
}

// LoadPolicy reads and validates the policy the engine was configured with, without
// building anything: what `portcullis validate` does.
func LoadPolicy(path string, embedded []byte) (*config.File, error) {
	if path == "" {
		return config.Parse("default.yaml (embedded)", ".", embedded)
	}
	return config.Load(path)
}

// loadFile loads the policy and logs its warnings (see config.File.Warnings).
func (e *Engine) loadFile() (*config.File, error) {
	f, err := LoadPolicy(e.opts.PolicyPath, e.opts.DefaultPolicy)
	if err != nil {
		return nil, err
	}
	for _, w := range f.Warnings() {
		e.log.Warn("policy warning", "problem", w.Error())
	}
	return f, nil
}

// Run binds the listeners and serves until ctx is cancelled, then drains in-flight
// requests and tunnels (bounded by DrainTimeout) and returns.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.runCtx = ctx
	err := e.reconcileListeners(e.cur.Load())
	e.mu.Unlock()
	if err != nil {
		e.shutdown()
		return err
	}
	e.shared.start(ctx)
	if e.opts.Watch {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.watch(ctx)
		}()
	}
	e.log.Info("portcullis running", "policy", e.cur.Load().file.Name, "listeners", e.listenerSummary())
	<-ctx.Done()
	e.shutdown()
	return nil
}

func (e *Engine) shutdown() {
	drain, cancel := context.WithTimeout(context.Background(), e.opts.DrainTimeout)
	defer cancel()
	e.mu.Lock()
	e.runCtx = nil // a reload from now on swaps the policy but binds nothing
	ls := make([]*listener, 0, len(e.listeners))
	for k, l := range e.listeners {
		ls = append(ls, l)
		delete(e.listeners, k)
	}
	st := e.cur.Load()
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.shutdown(drain)
		}()
	}
	// Beside the listeners: an inspected tunnel carried by an HTTP/2 stream
	// of the forward TLS door holds that stream, and so that listener's
	// drain, until the tunnel ends.
	if p := forwardDoor(st); p != nil {
		if wait := p.DrainInspected(); wait != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = wait(drain)
			}()
		}
	}
	wg.Wait()
	e.shared.shutdown(drain)
	e.wg.Wait()
	e.shared.close()
	e.log.Info("portcullis stopped")
}

// Reload loads the policy again and, if it compiles, swaps it in and rebinds listeners
// whose addresses changed. On error the running policy is kept and the error returned.
func (e *Engine) Reload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	st, err := e.reloadLocked()
	if err != nil {
		e.lastErr = err
		e.shared.policyLoaded(e.cur.Load(), err)
		e.log.Error("reload failed; the previous policy keeps serving", "error", err.Error())
		return err
	}
	e.lastErr = nil
	e.shared.policyLoaded(st, nil)
	e.log.Info("policy reloaded", "version", st.version, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// reloadLocked builds the new policy beside the running one (nothing that serves
// changes), binds the listeners it adds, and only then commits what it changes in
// the shared parts and swaps it in. A failure at any step before the commit
// releases what was prepared and leaves the running policy and everything it uses
// exactly as they were.
func (e *Engine) reloadLocked() (*state, error) {
	f, err := e.loadFile()
	if err != nil {
		return nil, err
	}
	st, err := e.build(f)
	if err != nil {
		return nil, err
	}
	var fresh []*listener
	if e.runCtx != nil {
		if fresh, err = e.bindListeners(st); err != nil {
			st.stage.discard() // listeners could not be bound: keep the old policy whole
			return nil, err
		}
	}
	st.version = e.version + 1
	release := st.commit()
	old := e.cur.Swap(st)
	if e.runCtx != nil {
		e.adoptListeners(st, fresh)
	}
	release()
	e.version = st.version
	e.shared.retire(old, st)
	e.drainInspected(old)
	return st, nil
}

// drainInspected makes the inspected tunnels that old's forward door serves
// finish (forward.Proxy.DrainInspected, within DrainTimeout) once a reload
// replaced it: their clients open new tunnels, decided by the policy in
// force, inspected (or not) with its CA. While draining (Run's end) it does
// nothing: the shutdown drains the door in force, and e.wg is being waited
// for.
func (e *Engine) drainInspected(old *state) {
	p := forwardDoor(old)
	if p == nil || e.runCtx == nil {
		return
	}
	wait := p.DrainInspected()
	if wait == nil {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.DrainTimeout)
		defer cancel()
		_ = wait(ctx)
	}()
}

// commit puts in force what building st prepared in the shared parts, just before
// st is swapped in; the function it returns releases what was replaced, once st
// serves.
func (st *state) commit() (release func()) {
	release = st.stage.commit()
	st.stage = nil
	return release
}

// Addrs returns the bound address of each listener, by kind ("forward", "reverse",
// "reverse-tls", "dns", "admin"): how tests find ports chosen with :0.
func (e *Engine) Addrs() map[string][]net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string][]net.Addr{}
	for k, l := range e.listeners {
		out[k.kind] = append(out[k.kind], l.addr)
	}
	return out
}

// Version is the number of the policy currently serving (1 for the first load).
func (e *Engine) Version() int {
	return e.cur.Load().version
}

// LastReloadError is the error of the most recent failed reload, nil after a success.
func (e *Engine) LastReloadError() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastErr
}

func (e *Engine) listenerSummary() string {
	s := ""
	for kind, addrs := range e.Addrs() {
		for _, a := range addrs {
			s += fmt.Sprintf("%s=%s ", kind, a)
		}
	}
	return s
}

// Explain evaluates f on the current policy and says why, rule by rule.
func (e *Engine) Explain(f *rules.Facts) (rules.Verdict, []rules.Step) {
	return e.cur.Load().program.Explain(f)
}

// Socks says how the policy's SOCKS5 door is set: whether it has listeners
// (forward.socks.listen), its sign-in mode, and the ports its tunnels may
// reach (forward.connect_ports, as for CONNECT).
func (e *Engine) Socks() (listening bool, signIn string, ports []int) {
	fw := e.cur.Load().file.Policy.Forward
	if fw == nil {
		return false, "", nil
	}
	full := fw.WithDefaults()
	return len(fw.Socks.Listen) > 0, fw.Socks.Mode(fw.Auth.Enabled()), full.ConnectPorts
}

// Intercepts reports whether the policy has forward.intercept listeners.
func (e *Engine) Intercepts() bool {
	fw := e.cur.Load().file.Policy.Forward
	return fw != nil && len(fw.Intercept.HTTP)+len(fw.Intercept.HTTPS) > 0
}

// SignInExempt reports whether the forward door would serve a request with
// facts f without asking for a sign-in (forward.auth.exempt), and why.
func (e *Engine) SignInExempt(f *rules.Facts) (why string, ok bool) {
	st := e.cur.Load()
	if f.Door != rules.DoorForward || st.auth == nil {
		return "", false
	}
	return st.authExempt.Match(f.Client, f.Host)
}

// UserGroups returns the groups of user from the forward door's sign-in
// source, and which source that is ("the group file" or "the directory"). ok
// is false when the policy has no sign-in; err when the source could not say.
func (e *Engine) UserGroups(ctx context.Context, user string) (groups []string, source string, ok bool, err error) {
	st := e.cur.Load()
	if st.auth == nil {
		return nil, "", false, nil
	}
	source = "the group file"
	if _, dir := st.auth.(*directory.Directory); dir {
		source = "the directory"
	}
	groups, err = st.auth.UserGroups(ctx, user)
	return groups, source, true, err
}

// ReopenLogs reopens the access log file (after logrotate moved it).
func (e *Engine) ReopenLogs() { e.shared.reopenLogs() }

// Close releases what New built when Run is never called (validate, explain).
func (e *Engine) Close() { e.shared.close() }
