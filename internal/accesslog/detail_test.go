package accesslog

import "testing"

type detailLog struct{ wants bool }

func (detailLog) Log(*Entry)          {}
func (d detailLog) WantsDetail() bool { return d.wants }

type plainLog struct{}

func (plainLog) Log(*Entry) {}

// TestWantsDetail: a Logger reads an entry's details unless it says it
// does not (DetailLogger), and a fan-out does when any of its loggers does.
func TestWantsDetail(t *testing.T) {
	off, on := detailLog{false}, detailLog{true}
	for _, c := range []struct {
		l    Logger
		want bool
	}{
		{plainLog{}, true}, {off, false}, {on, true},
		{Multi(off, detailLog{false}), false}, {Multi(off, on), true}, {Multi(off, plainLog{}), true},
	} {
		if got := WantsDetail(c.l); got != c.want {
			t.Errorf("WantsDetail(%#v) = %v, want %v", c.l, got, c.want)
		}
	}
}
