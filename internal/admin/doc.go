// Package admin owns the operator's view of Portcullis: the admin listener (/metrics,
// /healthz, /readyz, the status page, pprof), the Prometheus metrics fed from access-log
// entries, and the live status counters behind the page.
//
// Metrics and Status are accesslog.Loggers: the engine builds an accesslog.Writer, a
// Metrics and a Status, fans the doors' entries out to them with accesslog.Multi, and
// serves NewServer on the admin listener.
package admin
