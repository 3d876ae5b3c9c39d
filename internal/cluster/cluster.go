package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Intervals of the background loops.
const (
	// HeartbeatInterval is how often a node writes its registry entry and, while
	// Redis is down, how often it probes it.
	HeartbeatInterval = time.Second
	// NodeTTL is how long a node counts as alive after its last heartbeat.
	NodeTTL = 3 * HeartbeatInterval
	// SyncInterval is how often rate-limit counts are flushed and read back.
	SyncInterval = 25 * time.Millisecond
	// backgroundTimeout bounds the background loops' Redis calls.
	backgroundTimeout = 500 * time.Millisecond
)

// Cluster is one node's connection to the shared state. Its methods are safe for
// concurrent use; Run owns its background goroutines.
type Cluster struct {
	cfg    Config
	log    *slog.Logger
	rdb    redis.UniversalClient
	prefix string

	up       atomic.Bool
	alive    atomic.Int64 // live nodes at the last heartbeat
	peers    atomic.Pointer[[]Peer]
	failures atomic.Uint64 // transitions to down
	lastErr  atomic.Pointer[string]

	limiter    *Limiter
	conns      *ConnCounts
	bus        bus
	ops        chan queuedOp
	opsDropped atomic.Uint64

	info      atomic.Pointer[func() NodeInfo]
	started   time.Time
	closeOnce sync.Once
}

// New builds a Cluster from cfg; relative file names are taken from baseDir (the
// policy file's folder). It does not contact Redis: Run does, and the cluster counts
// as down until Redis first answers.
func New(cfg Config, baseDir string, logger *slog.Logger) (*Cluster, error) {
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := cfg.Redis
	password := ""
	if r.PasswordFile != "" {
		b, err := os.ReadFile(abs(baseDir, r.PasswordFile))
		if err != nil {
			return nil, fmt.Errorf("cluster.redis.password_file: %w", err)
		}
		password, _, _ = strings.Cut(string(b), "\n")
		password = strings.TrimRight(password, "\r")
	}
	var tlsCfg *tls.Config
	if r.TLS != nil {
		tlsCfg = &tls.Config{ServerName: r.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(abs(baseDir, r.TLS.CAFile))
			if err != nil {
				return nil, fmt.Errorf("cluster.redis.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("cluster.redis.tls.ca_file: %s holds no PEM certificate", r.TLS.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
	}
	// Requests wait on Redis at most Timeout, by their context's deadline (the
	// client honours it); the background loops allow backgroundTimeout. No
	// retries: a request falls back to local state instead.
	maint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	timeout := backgroundTimeout
	var rdb redis.UniversalClient
	switch r.Mode {
	case "cluster":
		rdb = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: r.Addrs, Username: r.Username, Password: password, TLSConfig: tlsCfg,
			DialTimeout: 250 * time.Millisecond, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
			MaxRetries: -1, DisableIdentity: true, Protocol: 2, MaintNotificationsConfig: maint,
		})
	case "sentinel":
		rdb = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: r.MasterName, SentinelAddrs: r.Addrs, Username: r.Username, Password: password,
			TLSConfig: tlsCfg, DialTimeout: 250 * time.Millisecond, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
			MaxRetries: -1, DisableIdentity: true, Protocol: 2,
		})
	default:
		rdb = redis.NewClient(&redis.Options{
			Addr: r.Addrs[0], Username: r.Username, Password: password, TLSConfig: tlsCfg,
			DialTimeout: 250 * time.Millisecond, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
			MaxRetries: -1, DisableIdentity: true, Protocol: 2, MaintNotificationsConfig: maint,
		})
	}
	c := &Cluster{cfg: cfg, log: logger.With("node", cfg.Node), rdb: rdb, prefix: r.KeyPrefix, started: time.Now()}
	// go-redis prints its connection errors itself; the cluster logs each outage
	// once, so its lines go to the debug level.
	redis.SetLogger(redisLogger{c.log})
	c.limiter = newLimiter(c)
	c.conns = newConnCounts(c)
	c.ops = make(chan queuedOp, opsQueue)
	c.bus.c = c
	return c, nil
}

func abs(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// Config returns the configuration in force (defaults applied).
func (c *Cluster) Config() Config { return c.cfg }

// Node is this node's name.
func (c *Cluster) Node() string { return c.cfg.Node }

// Up reports whether Redis answered the last operation.
func (c *Cluster) Up() bool { return c.up.Load() }

// Failures counts how many times Redis went from reachable to unreachable.
func (c *Cluster) Failures() uint64 { return c.failures.Load() }

// LastError is the error that last marked Redis down ("" if none).
func (c *Cluster) LastError() string {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Limiter is the shared rate limiter.
func (c *Cluster) Limiter() *Limiter { return c.limiter }

// SetNodeInfo sets what the heartbeat publishes about this node.
func (c *Cluster) SetNodeInfo(f func() NodeInfo) { c.info.Store(&f) }

// key returns the Redis key for parts under the prefix.
func (c *Cluster) key(parts ...string) string { return c.prefix + strings.Join(parts, ":") }

// failed marks Redis down after err (logged once per outage) and returns err.
func (c *Cluster) failed(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	s := err.Error()
	c.lastErr.Store(&s)
	if c.up.Swap(false) {
		c.failures.Add(1)
		c.log.Warn("cluster: Redis unreachable; limits, sign-in counts and the cache fall back to this node's own", "err", err)
	}
	return err
}

// ok marks Redis up (logged once per recovery).
func (c *Cluster) ok() {
	if !c.up.Swap(true) {
		c.log.Info("cluster: Redis reachable; sharing state", "redis", strings.Join(c.cfg.Redis.Addrs, ","), "mode", c.cfg.Redis.Mode)
	}
}

// do runs f with a context bounded by d and records the outcome.
func (c *Cluster) do(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := f(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return c.failed(err)
	}
	c.ok()
	return nil
}

// try runs f with a context bounded by d (a request's wait) without changing the
// up/down state on a failure: a slow answer to one request is no outage (the
// background loops, with their longer timeout, decide that).
func (c *Cluster) try(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := f(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// Run connects, heartbeats, syncs limits and listens for broadcasts until ctx ends,
// then closes the connection to Redis.
func (c *Cluster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.heartbeatLoop(ctx) })
	wg.Go(func() { c.limiter.syncLoop(ctx) })
	wg.Go(func() { c.bus.listen(ctx) })
	wg.Go(func() { c.opsLoop(ctx) })
	wg.Go(func() { c.conns.syncLoop(ctx) })
	wg.Wait()
	c.Close()
}

// Close closes the connection to Redis (Run does it when its context ends).
func (c *Cluster) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.rdb.Close() })
	return err
}

// redisLogger sends go-redis's own log lines to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "cluster: redis: "+fmt.Sprintf(format, v...))
}

// nudgedLoop calls sync every interval and at once when nudge fires, while Redis
// is up (the heartbeat probes it while it is down; what is counted meanwhile
// stays local), until ctx ends.
func (c *Cluster) nudgedLoop(ctx context.Context, every time.Duration, nudge <-chan struct{}, sync func(context.Context, time.Time)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
		}
		if c.Up() {
			sync(ctx, time.Now())
		}
	}
}
