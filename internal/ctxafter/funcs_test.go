package ctxafter

import (
	"testing"
	"time"
)

// funcs runs what was added and not stopped, in order, once; a function
// added after Run runs at once (in a goroutine), and its stop, as every
// stop after Run, reports false.
func TestFuncs(t *testing.T) {
	var l funcs
	var order []int
	l.Add(func() { order = append(order, 1) })
	stop := l.Add(func() { order = append(order, 2) })
	l.Add(func() { order = append(order, 3) })
	if !stop() {
		t.Fatal("stop before Run reported that f had run")
	}
	if stop() {
		t.Fatal("a second stop reported that it stopped f")
	}
	late := l.Add(func() { order = append(order, 4) })
	l.Run()
	l.Run()
	if len(order) != 3 || order[0] != 1 || order[1] != 3 || order[2] != 4 {
		t.Fatalf("ran %v, want [1 3 4]", order)
	}
	if late() {
		t.Fatal("stop after Run reported that it stopped f")
	}
	ran := make(chan struct{})
	if l.Add(func() { close(ran) })() {
		t.Fatal("stop of a function added after Run reported that it stopped it")
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a function added after Run did not run")
	}
	var empty funcs
	empty.Run()
	ran2 := make(chan struct{})
	empty.Add(func() { close(ran2) })
	select {
	case <-ran2:
	case <-time.After(10 * time.Second):
		t.Fatal("a function added after a Run with none registered did not run")
	}
}
