package accept

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// flaky is a listener whose Accept fails with errs first, then accepts from
// the real listener under it.
type flaky struct {
	net.Listener
	errs chan error
}

func (f *flaky) Accept() (net.Conn, error) {
	select {
	case err := <-f.errs:
		return nil, err
	default:
		return f.Listener.Accept()
	}
}

func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: inner, errs: make(chan error, 8)}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		f.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	var w Watch
	ln := New(f, "test", nil, &w)
	defer ln.Close()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept after five temporary errors: %v", err)
	}
	got.Close()
	if err := w.Err(); err != nil {
		t.Fatalf("Watch after recovery: %v", err)
	}
}

func TestWatchNamesFailingListenerUntilItAccepts(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: inner, errs: make(chan error, 1)}
	f.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	var w Watch
	ln := New(f, "forward 127.0.0.1:3128", nil, &w)
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for w.Err() == nil { // the back-off after the failure
		select {
		case err := <-done:
			t.Fatalf("Accept returned (%v) before a connection came", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing listener never showed in the Watch")
		}
		time.Sleep(time.Millisecond)
	}
	if msg := w.Err().Error(); !strings.Contains(msg, "forward 127.0.0.1:3128") || !strings.Contains(msg, "too many open files") {
		t.Fatalf("Watch.Err() = %q, want the listener and the error named", msg)
	}
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Watch after the listener accepted: %v", err)
	}
	ln.Close()
}

func TestCloseEndsBackoffAndClosedIsFinal(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: inner, errs: make(chan error, 64)}
	for range 64 {
		f.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	var w Watch
	ln := New(f, "x", nil, &w)
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for w.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the failing listener never showed in the Watch")
		}
		time.Sleep(time.Millisecond)
	}
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("a closed listener is still in the Watch: %v", err)
	}
}
