// Package socks is the SOCKS5 front of the forward door: its policy section
// (`forward.socks`) and the server side of the wire protocol — RFC 1928
// method negotiation and requests (CONNECT to a domain name, an IPv4 or an
// IPv6 address; BIND and UDP ASSOCIATE are refused), RFC 1929
// username/password sign-in. It reads exactly the bytes of each message, so
// nothing the client sends after its request is consumed. The decisions (sign-in,
// rules, the tunnel) are the forward door's: forward.Proxy.ServeSOCKS.
package socks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Version is the protocol version byte of SOCKS5.
const Version = 5

// Authentication methods (RFC 1928 §3).
const (
	MethodNone         byte = 0x00
	MethodPassword     byte = 0x02
	MethodNoAcceptable byte = 0xFF
)

// Commands (RFC 1928 §4).
const (
	CmdConnect      byte = 1
	CmdBind         byte = 2
	CmdUDPAssociate byte = 3
)

// Reply codes (RFC 1928 §6).
const (
	ReplySucceeded           byte = 0
	ReplyGeneralFailure      byte = 1
	ReplyNotAllowed          byte = 2 // connection not allowed by ruleset
	ReplyNetworkUnreachable  byte = 3
	ReplyHostUnreachable     byte = 4
	ReplyConnectionRefused   byte = 5
	ReplyTTLExpired          byte = 6
	ReplyCommandNotSupported byte = 7
	ReplyAddressNotSupported byte = 8
)

// Address types (RFC 1928 §5).
const (
	atypIPv4   byte = 1
	atypDomain byte = 3
	atypIPv6   byte = 4
)

// ErrVersion is returned for a message that is not SOCKS5.
var ErrVersion = errors.New("socks: not a SOCKS5 client")

// Negotiate reads the client's greeting and answers with want when the client
// offers it; otherwise it answers "no acceptable method" and returns an error.
func Negotiate(rw io.ReadWriter, want byte) error {
	var head [2]byte
	if _, err := io.ReadFull(rw, head[:]); err != nil {
		return err
	}
	if head[0] != Version {
		return ErrVersion
	}
	methods := make([]byte, head[1])
	if _, err := io.ReadFull(rw, methods); err != nil {
		return err
	}
	for _, m := range methods {
		if m == want {
			_, err := rw.Write([]byte{Version, want})
			return err
		}
	}
	_, _ = rw.Write([]byte{Version, MethodNoAcceptable})
	return fmt.Errorf("socks: the client offers no acceptable method (methods %x, want %#x)", methods, want)
}

// ReadPassword reads an RFC 1929 username/password request.
func ReadPassword(r io.Reader) (user, password string, err error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return "", "", err
	}
	if head[0] != 1 {
		return "", "", fmt.Errorf("socks: username/password version %d, want 1", head[0])
	}
	u := make([]byte, int(head[1])+1) // the name and the password's length
	if _, err := io.ReadFull(r, u); err != nil {
		return "", "", err
	}
	p := make([]byte, u[len(u)-1])
	if _, err := io.ReadFull(r, p); err != nil {
		return "", "", err
	}
	return string(u[:len(u)-1]), string(p), nil
}

// WritePasswordStatus answers an RFC 1929 request: success or failure (after
// which the server closes the connection).
func WritePasswordStatus(w io.Writer, ok bool) error {
	status := byte(1)
	if ok {
		status = 0
	}
	_, err := w.Write([]byte{1, status})
	return err
}

// Request is a client's SOCKS5 request.
type Request struct {
	Cmd  byte
	Host string // a domain name as sent, or an IP address
	Port uint16
}

// Target is the request's destination as host:port.
func (r *Request) Target() string {
	return net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
}

// ErrAddressType is returned (wrapped) for a request with an unknown address type:
// answer it ReplyAddressNotSupported.
var ErrAddressType = errors.New("socks: address type not supported")

// ReadRequest reads a request (RFC 1928 §4).
func ReadRequest(r io.Reader) (*Request, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	if head[0] != Version {
		return nil, ErrVersion
	}
	req := &Request{Cmd: head[1]}
	switch head[3] {
	case atypIPv4:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return nil, err
		}
		req.Host = netip.AddrFrom4(a).String()
	case atypIPv6:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return nil, err
		}
		req.Host = netip.AddrFrom16(a).String()
	case atypDomain:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return nil, err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, err
		}
		req.Host = string(name)
	default:
		return nil, fmt.Errorf("%w: %d", ErrAddressType, head[3])
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return nil, err
	}
	req.Port = binary.BigEndian.Uint16(port[:])
	return req, nil
}

// WriteReply writes a reply with code. The bound address is given as
// 0.0.0.0:0: the proxy does not tell clients its upstream addresses, and
// CONNECT clients do not use it.
func WriteReply(w io.Writer, code byte) error {
	_, err := w.Write([]byte{Version, code, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
	return err
}
