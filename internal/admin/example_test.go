package admin_test

import (
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/admin"
)

// The engine's wiring: one Logger for the doors that feeds the access log, the
// metrics and the status page; the admin handler serves the rest.
func Example() {
	accessLog, err := accesslog.NewWriter(accesslog.Config{Format: accesslog.FormatSquid}, os.Stdout)
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	metrics := admin.NewMetrics(reg)
	_ = metrics.RegisterAccessLog(accessLog)
	status := admin.NewStatus(time.Now)
	logger := accesslog.Multi(accessLog, metrics, status) // give this to every door

	_ = admin.NewServer(admin.ServerOptions{Registry: reg, Status: status}) // serve on the admin listener

	logger.Log(&accesslog.Entry{
		Time: time.Unix(1_800_000_000, 0), Door: "forward", Client: netip.MustParseAddr("192.0.2.10"),
		Method: "GET", URL: "http://games.example/", Action: "block", Rule: "no-games", Category: "games",
		Status: 403, BytesOut: 1520, Duration: 3 * time.Millisecond,
	})
	_ = accessLog.Close()
	// Output:
	// 1800000000.003      3 192.0.2.10 TCP_DENIED/403 1520 GET http://games.example/ - HIER_NONE/- -
}
