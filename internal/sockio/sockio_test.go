//go:build unix

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns a Conn over the server side of a loopback TCP connection and
// the client side.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var s Conn
	s.Init(raw, server)
	return &s, client
}

// TestReadWrite moves 8 MiB each way, more than the socket buffers hold, so
// that writes and reads wait for the poller (EAGAIN) on the way.
func TestReadWrite(t *testing.T) {
	s, client := pair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(want))))
		got <- b
	}()
	if n, err := s.Write(want); n != len(want) || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes, not what was written", len(b))
	}
	go func() {
		client.Write(want)
		client.(*net.TCPConn).CloseWrite()
	}()
	b, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("ReadAll: %d bytes, %v", len(b), err)
	}
	if n, err := s.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v", n, err)
	}
}

// TestReadWhileWriting: one goroutine writes 8 MiB while another reads 8
// MiB, both through waits, as a handler writing its response while the
// request body is still read does (the race detector checks they share
// nothing).
func TestReadWhileWriting(t *testing.T) {
	s, client := pair(t)
	want := bytes.Repeat([]byte("fedcba9876543210"), 512<<10)
	echoed := make(chan []byte, 1)
	go func() { // the client sends want and reads what comes back
		go client.Write(want)
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(want))))
		echoed <- b
	}()
	wrote := make(chan error, 1)
	go func() {
		_, err := s.Write(want)
		wrote <- err
	}()
	got, err := io.ReadAll(io.LimitReader(s, int64(len(want))))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes while writing: %v", len(got), err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write while reading: %v", err)
	}
	if b := <-echoed; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes, not what was written", len(b))
	}
}

// TestDeadlines: a read with nothing to read and a write the peer never
// drains end at their deadlines with a timeout error.
func TestDeadlines(t *testing.T) {
	s, _ := pair(t)
	s.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 10))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if strings.Count(err.Error(), "tcp") != 1 { // "read tcp A->B: i/o timeout", as net.Conn says it
		t.Fatalf("read: %q, want one address pair", err)
	}
	big := make([]byte, 64<<20)
	s.c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := s.Write(big)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("write: %v, want a timeout", err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("wrote %d bytes before the deadline, want some, not all", n)
	}
}

// TestPeerGone: writing to a connection the peer reset fails with the
// system's error inside a *net.OpError, as net.Conn's Write does.
func TestPeerGone(t *testing.T) {
	s, client := pair(t)
	client.(*net.TCPConn).SetLinger(0)
	client.Close()
	var err error
	for range 100 {
		if _, err = s.Write([]byte("hello")); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("write to a reset connection: %v", err)
	}
	if _, err := s.Read(make([]byte, 10)); err == nil {
		t.Fatal("read of a reset connection did not fail")
	}
}

// TestReadAfter: first runs before the read waits (the peer answers what it
// wrote), and an error of first comes back as it is, nothing read.
func TestReadAfter(t *testing.T) {
	s, client := pair(t)
	go func() { // answers "ping" with "pong"
		b := make([]byte, 4)
		if _, err := io.ReadFull(client, b); err == nil && string(b) == "ping" {
			client.Write([]byte("pong"))
		}
	}()
	b := make([]byte, 4)
	n, err := s.ReadAfter(b, func() error { _, err := s.Write([]byte("ping")); return err })
	if err != nil || string(b[:n]) != "pong" {
		t.Fatalf("ReadAfter: %q, %v", b[:n], err)
	}
	failed := errors.New("write failed")
	if n, err := s.ReadAfter(b, func() error { return failed }); n != 0 || err != failed {
		t.Fatalf("ReadAfter with a failing first step: %d, %v", n, err)
	}
}
