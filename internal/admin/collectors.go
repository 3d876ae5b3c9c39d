package admin

import (
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/prometheus/client_golang/prometheus"
)

// funcCollector asks a callback for its values at each scrape.
type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// RegisterCache exports the shared cache's counters, read from stats at each scrape:
// portcullis_cache_{hits,misses,stale,revalidated,collapsed,bypass,evictions}_total and
// portcullis_cache_{bytes,objects}.
func (m *Metrics) RegisterCache(stats func() CacheStatus) error {
	counters := []struct {
		name, help string
		get        func(*CacheStatus) int64
	}{
		{"hits", "Responses served from the cache without contacting the origin.", func(s *CacheStatus) int64 { return s.Hits }},
		{"misses", "Requests forwarded because nothing usable was stored.", func(s *CacheStatus) int64 { return s.Misses }},
		{"stale", "Stale responses served.", func(s *CacheStatus) int64 { return s.Stale }},
		{"revalidated", "Stored responses revalidated with the origin.", func(s *CacheStatus) int64 { return s.Revalidated }},
		{"collapsed", "Requests answered from another request's origin fetch.", func(s *CacheStatus) int64 { return s.Collapsed }},
		{"bypass", "Requests not eligible for caching.", func(s *CacheStatus) int64 { return s.Bypass }},
		{"evictions", "Objects evicted to stay within the size limit.", func(s *CacheStatus) int64 { return s.Evictions }},
	}
	bytes := desc("portcullis_cache_bytes", "Bytes held by the cache.")
	objects := desc("portcullis_cache_objects", "URLs held by the cache.")
	c := &funcCollector{descs: []*prometheus.Desc{bytes, objects}}
	for _, k := range counters {
		c.descs = append(c.descs, desc("portcullis_cache_"+k.name+"_total", k.help))
	}
	c.collect = func(ch chan<- prometheus.Metric) {
		s := stats()
		ch <- prometheus.MustNewConstMetric(bytes, prometheus.GaugeValue, float64(s.Bytes))
		ch <- prometheus.MustNewConstMetric(objects, prometheus.GaugeValue, float64(s.Objects))
		for i, k := range counters {
			ch <- prometheus.MustNewConstMetric(c.descs[2+i], prometheus.CounterValue, float64(k.get(&s)))
		}
	}
	return m.reg.Register(c)
}

// RegisterCertificates exports the days left to each certificate's end, read
// from list at each scrape: portcullis_tls_certificate_expiry_days, labelled
// name (names without a certificate yet are left out).
func (m *Metrics) RegisterCertificates(list func() []CertStatus) error {
	days := desc("portcullis_tls_certificate_expiry_days", "Days until the certificate served for the name ends (ACME).", "name")
	c := &funcCollector{descs: []*prometheus.Desc{days}}
	c.collect = func(ch chan<- prometheus.Metric) {
		for _, s := range list() {
			if !s.NotAfter.IsZero() {
				ch <- prometheus.MustNewConstMetric(days, prometheus.GaugeValue, s.DaysLeft, s.Name)
			}
		}
	}
	return m.reg.Register(c)
}

// RegisterPools exports every pool member's state, read from pools at each scrape:
// portcullis_pool_member_{healthy,in_flight,recent_failures} and
// portcullis_pool_member_failures_total, labelled pool and member (the member's URL).
func (m *Metrics) RegisterPools(pools func() []PoolStatus) error {
	healthy := desc("portcullis_pool_member_healthy", "1 if the member is selectable now.", "pool", "member")
	inFlight := desc("portcullis_pool_member_in_flight", "Requests the member is serving now.", "pool", "member")
	recent := desc("portcullis_pool_member_recent_failures", "Consecutive failed requests.", "pool", "member")
	failures := desc("portcullis_pool_member_failures_total", "Failed requests since start.", "pool", "member")
	c := &funcCollector{descs: []*prometheus.Desc{healthy, inFlight, recent, failures}}
	c.collect = func(ch chan<- prometheus.Metric) {
		for _, p := range pools() {
			for _, mb := range p.Members {
				h := 0.0
				if mb.Healthy {
					h = 1
				}
				ch <- prometheus.MustNewConstMetric(healthy, prometheus.GaugeValue, h, p.Name, mb.URL)
				ch <- prometheus.MustNewConstMetric(inFlight, prometheus.GaugeValue, float64(mb.InFlight), p.Name, mb.URL)
				ch <- prometheus.MustNewConstMetric(recent, prometheus.GaugeValue, float64(mb.RecentFailures), p.Name, mb.URL)
				ch <- prometheus.MustNewConstMetric(failures, prometheus.CounterValue, float64(mb.Failures), p.Name, mb.URL)
			}
		}
	}
	return m.reg.Register(c)
}

// RegisterLists exports portcullis_list_entries{list}, read from lists at each scrape.
func (m *Metrics) RegisterLists(lists func() []ListStatus) error {
	entries := desc("portcullis_list_entries", "Entries in each loaded list.", "list")
	return m.reg.Register(&funcCollector{
		descs: []*prometheus.Desc{entries},
		collect: func(ch chan<- prometheus.Metric) {
			for _, l := range lists() {
				ch <- prometheus.MustNewConstMetric(entries, prometheus.GaugeValue, float64(l.Entries), l.Name)
			}
		},
	})
}

// RegisterAccessLog exports portcullis_access_log_{written,dropped}_lines_total for a.
func (m *Metrics) RegisterAccessLog(a *accesslog.Writer) error {
	written := desc("portcullis_access_log_written_lines_total", "Access-log lines written.")
	dropped := desc("portcullis_access_log_dropped_lines_total", "Access-log lines dropped (queue full, write error).")
	return m.reg.Register(&funcCollector{
		descs: []*prometheus.Desc{written, dropped},
		collect: func(ch chan<- prometheus.Metric) {
			ch <- prometheus.MustNewConstMetric(written, prometheus.CounterValue, float64(a.Written()))
			ch <- prometheus.MustNewConstMetric(dropped, prometheus.CounterValue, float64(a.Dropped()))
		},
	})
}

// RegisterGaugeFunc exports one gauge whose value is read from fn at each scrape, for
// anything else the engine wants to show (for example tunnels open now).
func (m *Metrics) RegisterGaugeFunc(name, help string, fn func() float64) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}
