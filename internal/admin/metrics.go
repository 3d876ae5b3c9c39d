package admin

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics turns access-log entries into Prometheus metrics on an injected registry, and
// exports the gauges the engine supplies as functions (cache, pools, lists) and the
// policy reload state. All metric names start with "portcullis_".
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec   // door, action, rule, category, code
	errors       *prometheus.CounterVec   // door
	duration     *prometheus.HistogramVec // door
	tunnels      *prometheus.HistogramVec // door
	poolDuration *prometheus.HistogramVec // pool
	bytesIn      *prometheus.CounterVec   // door
	bytesOut     *prometheus.CounterVec   // door
	dnsAnswers   *prometheus.CounterVec   // answer
	byProto      *prometheus.CounterVec   // door, proto (HTTP doors)

	policyInfo   *prometheus.GaugeVec   // version
	policyLoaded prometheus.Gauge       // unix seconds
	policyOK     prometheus.Gauge       // 1 or 0
	reloads      *prometheus.CounterVec // result

	doors    sync.Map // door name → *doorMetrics, the per-door children looked up once
	counters sync.Map // requestLabels → prometheus.Counter, requests' children looked up once
	pools    sync.Map // pool name → prometheus.Observer
	protos   sync.Map // protoLabels → prometheus.Counter
	children sync.Map // entryLabels → *entryChildren, all an HTTP entry moves

	// last is the children of a recent entry: a busy door logs the same
	// labels again and again, and comparing them costs less than hashing.
	last atomic.Pointer[entryChildren]

	mu      sync.Mutex
	version string
}

// doorMetrics are one door's children of the per-door vectors.
type doorMetrics struct {
	errors, bytesIn, bytesOut prometheus.Counter
	duration, tunnels         prometheus.Observer
}

func (m *Metrics) door(name string) *doorMetrics {
	if d, ok := m.doors.Load(name); ok {
		return d.(*doorMetrics)
	}
	d, _ := m.doors.LoadOrStore(name, &doorMetrics{
		errors:   m.errors.WithLabelValues(name),
		bytesIn:  m.bytesIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
		duration: m.duration.WithLabelValues(name),
		tunnels:  m.tunnels.WithLabelValues(name),
	})
	return d.(*doorMetrics)
}

// requestLabels are the label values of one portcullis_requests_total child.
type requestLabels struct{ door, action, rule, category, code string }

// requestCounter returns the child for l, looking it up in the vector only the
// first time (the vector hashes and validates the values on every call).
func (m *Metrics) requestCounter(l requestLabels) prometheus.Counter {
	if c, ok := m.counters.Load(l); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.counters.LoadOrStore(l, m.requests.WithLabelValues(l.door, l.action, l.rule, l.category, l.code))
	return c.(prometheus.Counter)
}

// poolObserver returns pool's child of portcullis_pool_request_duration_seconds.
func (m *Metrics) poolObserver(pool string) prometheus.Observer {
	if o, ok := m.pools.Load(pool); ok {
		return o.(prometheus.Observer)
	}
	o, _ := m.pools.LoadOrStore(pool, m.poolDuration.WithLabelValues(pool))
	return o.(prometheus.Observer)
}

var _ accesslog.Logger = (*Metrics)(nil)

// NewMetrics creates Portcullis's metrics and registers them on reg. It panics if reg
// already holds them (a programming error, as with prometheus.MustRegister). The
// engine may add the Go and process collectors to reg itself.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	latency := prometheus.ExponentialBuckets(0.001, 2.5, 12) // 1 ms … 60 s
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Requests, tunnels and DNS queries by door, verdict action, deciding rule and category, and status (HTTP class like 2xx, or DNS rcode).",
		}, []string{"door", "action", "rule", "category", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_request_errors_total",
			Help: "Requests that failed (upstream unreachable, timeout, aborted) by door.",
		}, []string{"door"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_request_duration_seconds",
			Help:    "Time until the response finished, by door (tunnels excluded).",
			Buckets: latency,
		}, []string{"door"}),
		tunnels: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_tunnel_duration_seconds",
			Help:    "Lifetime of CONNECT tunnels, by door.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 s … 4.5 h
		}, []string{"door"}),
		poolDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_pool_request_duration_seconds",
			Help:    "Time until the response finished, by upstream pool.",
			Buckets: latency,
		}, []string{"pool"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_received_bytes_total",
			Help: "Bytes read from clients (request bodies, tunnel client to server), by door.",
		}, []string{"door"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_sent_bytes_total",
			Help: "Bytes written to clients (response bodies, tunnel server to client), by door.",
		}, []string{"door"}),
		dnsAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_dns_answers_total",
			Help: "DNS queries by what was answered (A, AAAA, NXDOMAIN, blocked…).",
		}, []string{"answer"}),
		byProto: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_http_requests_by_protocol_total",
			Help: "HTTP requests by door and protocol the client spoke (HTTP/1.1, HTTP/2.0, HTTP/3.0).",
		}, []string{"door", "proto"}),
		policyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_policy_info",
			Help: "The policy version in force (value 1).",
		}, []string{"version"}),
		policyLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_policy_loaded_timestamp_seconds",
			Help: "When the policy in force was loaded (Unix time).",
		}),
		policyOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_policy_last_reload_success",
			Help: "1 if the last policy load succeeded, 0 if it failed (the previous policy keeps serving).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_policy_reloads_total",
			Help: "Policy loads by result (ok, error).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.errors, m.duration, m.tunnels, m.poolDuration, m.bytesIn,
		m.bytesOut, m.dnsAnswers, m.byProto, m.policyInfo, m.policyLoaded, m.policyOK, m.reloads)
	return m
}

// WantsDetail implements accesslog.DetailLogger: the metrics read none
// of an entry's details.
func (m *Metrics) WantsDetail() bool { return false }

// Log implements accesslog.Logger: one entry moves the request, byte, latency and DNS counters.
func (m *Metrics) Log(e *accesslog.Entry) {
	if e.Door == "dns" {
		m.requestCounter(requestLabels{e.Door, e.Action, e.Rule, e.Category, statusCode(e)}).Inc()
		d := m.door(e.Door)
		if e.Error != "" {
			d.errors.Inc()
		}
		d.duration.Observe(e.Duration.Seconds())
		if e.Pool != "" {
			m.poolObserver(e.Pool).Observe(e.Duration.Seconds())
		}
		m.addBytes(d, e)
		m.dnsAnswers.WithLabelValues(dnsAnswer(e)).Inc()
		return
	}
	k := entryLabels{requestLabels{e.Door, e.Action, e.Rule, e.Category, statusCode(e)}, e.Pool, e.Proto}
	ch := m.last.Load()
	if ch == nil || ch.labels != k {
		ch = m.childrenFor(k)
		m.last.Store(ch)
	}
	ch.requests.Inc()
	d := ch.door
	if e.Error != "" {
		d.errors.Inc()
	}
	secs := e.Duration.Seconds()
	if e.Method == "CONNECT" && !e.Denied() {
		d.tunnels.Observe(secs)
	} else {
		d.duration.Observe(secs)
	}
	if ch.pool != nil {
		ch.pool.Observe(secs)
	}
	m.addBytes(d, e)
	if ch.proto != nil {
		ch.proto.Inc()
	}
}

// addBytes counts e's bytes in and out on d.
func (m *Metrics) addBytes(d *doorMetrics, e *accesslog.Entry) {
	if e.BytesIn > 0 {
		d.bytesIn.Add(float64(e.BytesIn))
	}
	if e.BytesOut > 0 {
		d.bytesOut.Add(float64(e.BytesOut))
	}
}

// entryLabels are the label values an HTTP door's entry moves: its
// portcullis_requests_total child's, its pool's and its protocol's.
type entryLabels struct {
	requestLabels
	pool, proto string
}

// entryChildren are the children one entryLabels moves, looked up together
// (one map lookup per entry instead of one per vector).
type entryChildren struct {
	labels   entryLabels
	requests prometheus.Counter
	door     *doorMetrics
	pool     prometheus.Observer // nil without a pool
	proto    prometheus.Counter  // nil without a protocol
}

// childrenFor returns the children for k, building them the first time.
func (m *Metrics) childrenFor(k entryLabels) *entryChildren {
	if ch, ok := m.children.Load(k); ok {
		return ch.(*entryChildren)
	}
	ch := &entryChildren{labels: k, requests: m.requestCounter(k.requestLabels), door: m.door(k.door)}
	if k.pool != "" {
		ch.pool = m.poolObserver(k.pool)
	}
	if k.proto != "" {
		ch.proto = m.protoCounter(protoLabels{k.door, k.proto})
	}
	v, _ := m.children.LoadOrStore(k, ch)
	return v.(*entryChildren)
}

// protoLabels are the label values of one portcullis_http_requests_by_protocol_total child.
type protoLabels struct{ door, proto string }

func (m *Metrics) protoCounter(l protoLabels) prometheus.Counter {
	if c, ok := m.protos.Load(l); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.protos.LoadOrStore(l, m.byProto.WithLabelValues(l.door, l.proto))
	return c.(prometheus.Counter)
}

// SetPolicy records a policy load. With err nil, version loaded at loadedAt is now in
// force; otherwise a reload attempted at loadedAt failed and the previous version (the
// version argument is ignored) keeps serving.
func (m *Metrics) SetPolicy(version string, loadedAt time.Time, err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		m.policyOK.Set(0)
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.policyOK.Set(1)
	m.policyLoaded.Set(float64(loadedAt.UnixNano()) / 1e9)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.version != version {
		m.policyInfo.DeleteLabelValues(m.version)
		m.version = version
	}
	m.policyInfo.WithLabelValues(version).Set(1)
}

// statusCode is the "code" label: the HTTP status class ("2xx"), "none" when no
// response was sent, or the DNS rcode name ("NOERROR").
func statusCode(e *accesslog.Entry) string {
	if e.Door == "dns" {
		if s := accesslog.RcodeName(e.Status); s != "" {
			return s
		}
		return strconv.Itoa(e.Status)
	}
	switch {
	case e.Status >= 100 && e.Status < 200:
		return "1xx"
	case e.Status < 300 && e.Status >= 200:
		return "2xx"
	case e.Status < 400 && e.Status >= 300:
		return "3xx"
	case e.Status < 500 && e.Status >= 400:
		return "4xx"
	case e.Status < 600 && e.Status >= 500:
		return "5xx"
	}
	return "none"
}

// dnsAnswer is what a DNS entry answered: Entry.Answer, else "blocked" for a block
// verdict, else the rcode name.
func dnsAnswer(e *accesslog.Entry) string {
	switch {
	case e.Answer != "":
		return e.Answer
	case e.Action == "block":
		return "blocked"
	}
	return statusCode(e)
}
