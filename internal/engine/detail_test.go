package engine

import (
	"io"
	"testing"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// TestFanoutWantsDetail: the engine's access-log fan-out (the switchable
// log, the metrics, the status counters) reads an entry's details only
// while an access log is on, so that the doors skip their lookups with
// the log off.
func TestFanoutWantsDetail(t *testing.T) {
	o := newObservability(&Engine{})
	if accesslog.WantsDetail(o.fanout) {
		t.Error("log off: the fan-out wants details")
	}
	w, err := accesslog.NewWriter(accesslog.Config{Format: "json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.current.Store(w)
	if !accesslog.WantsDetail(o.fanout) {
		t.Error("log on: the fan-out does not want details")
	}
}
