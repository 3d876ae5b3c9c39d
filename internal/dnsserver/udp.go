package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// serveUDP serves one UDP socket without miekg's goroutine and unpacked message
// per packet: a plain query (one question, class IN, no EDNS options) that the
// resolver's cache answers in wire form is parsed, decided and answered in the
// read loop; every other packet is unpacked and handled by ServeDNS in a goroutine
// of its own, so a cache miss never holds the loop. A plain query that misses the
// cache takes its in-flight slot in the loop (see inflight), and is dropped there
// when none is free; the goroutines are bounded too (maxHandlers). A flood of
// misses thus costs the loop a parse and a map lookup per packet, and cached
// answers keep flowing. It returns when ctx ends (nil, after the handlers in
// flight have finished) or the socket fails.
func (s *Server) serveUDP(ctx context.Context, pc *net.UDPConn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	buf := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, ednsSize)
	failures := 0
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// An error on one datagram is skipped; a socket that only fails is not.
			if failures++; errors.Is(err, net.ErrClosed) || failures > maxReadFailures {
				return fmt.Errorf("dnsserver: %w", err)
			}
			continue
		}
		failures = 0
		pkt := buf[:n]
		reply, fate := s.answerFast(pkt, from, out[:0])
		switch fate {
		case fastAnswered:
			pc.WriteToUDPAddrPort(reply, from)
			continue
		case fastDropped:
			continue
		}
		client := from.Addr().Unmap()
		admitted := fate == fastAdmitted
		if !admitted && s.handlers.Load() >= int64(s.maxHandlers()) {
			continue // as many handlers as queries may wait for upstreams, and more
		}
		m := new(dns.Msg)
		if err := m.Unpack(pkt); err != nil {
			if admitted {
				s.busy.release(client)
			}
			if reply := formErr(pkt, out[:0]); reply != nil {
				pc.WriteToUDPAddrPort(reply, from)
			}
			continue
		}
		s.handlers.Add(1)
		wg.Go(func() {
			defer s.handlers.Add(-1)
			s.serve(&udpWriter{pc: pc, remote: from}, m, admitted)
		})
	}
}

// maxHandlers bounds the goroutines serveUDP runs: one per query that may wait
// for an upstream, and handlerHeadroom more for queries answered at once (cached
// answers with EDNS options, blocks, GSLB) or about to be dropped.
func (s *Server) maxHandlers() int { return s.state.Load().cfg.MaxInFlight + handlerHeadroom }

const handlerHeadroom = 256

// fastFate is what answerFast did with a packet.
type fastFate int

const (
	fastNone     fastFate = iota // not handled: unpack it and serve it in a goroutine
	fastAnswered                 // the reply is returned
	fastAdmitted                 // a plain query the cache misses: its in-flight slot is taken
	fastDropped                  // a plain query the cache misses, dropped (no slot free) and logged
)

// fastUDP reports whether pc can be served by serveUDP: it must be bound to one
// address, so that replies leave from the address queries came to (a wildcard
// socket is left to miekg, which tracks the destination of each datagram).
func fastUDP(pc net.PacketConn) (*net.UDPConn, bool) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, false
	}
	a, ok := uc.LocalAddr().(*net.UDPAddr)
	return uc, ok && !a.IP.IsUnspecified()
}

// answerFast runs handle on pkt without unpacking it: it returns the reply when
// the resolver's cache gives it (fastAnswered). A plain query that would be
// forwarded but misses the cache takes an in-flight slot for its client
// (fastAdmitted) or, when none is free, is logged and dropped (fastDropped).
// Anything else is left to the goroutine path (fastNone).
func (s *Server) answerFast(pkt []byte, from netip.AddrPort, out []byte) ([]byte, fastFate) {
	wq, size, ok := parseQuery(pkt)
	if !ok {
		return nil, fastNone
	}
	st := s.state.Load()
	q := query{wire: wq, plain: true, qtype: wq.qtype, qclass: dns.ClassINET,
		client: from.Addr().Unmap(), start: st.now(), size: size, proto: "udp"}
	q.qname = strings.ToLower(wq.name)
	q.host = q.qname[:len(q.qname)-1]
	a := st.handle(&q, out, &s.busy)
	switch a.fate {
	case fastAnswered:
		st.logQuery(&q, a.out, int(a.wire[3]&0x0F), len(a.wire))
		return a.wire, fastAnswered
	case fastDropped:
		st.logQuery(&q, a.out, dns.RcodeServerFailure, 0)
	}
	return nil, a.fate
}

// parseQuery reads a plain query from its wire form: QUERY opcode, one question of
// class IN whose labels need no escaping, nothing else but an optional OPT record
// (version 0) without options. size is the largest reply the client accepts.
func parseQuery(b []byte) (q wireQuery, size int, ok bool) {
	if len(b) < 12+1+4 || b[2]&0xFA != 0 || // QR, opcode, AA, TC must be 0
		binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return q, 0, false
	}
	ar := binary.BigEndian.Uint16(b[10:])
	if ar > 1 {
		return q, 0, false
	}
	var name [256]byte
	n, off := 0, 12
	for {
		if off >= len(b) {
			return q, 0, false
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(b) || n+l+1 > 254 {
			return q, 0, false
		}
		for _, c := range b[off+1 : off+1+l] {
			if !plainLabelByte(c) {
				return q, 0, false
			}
		}
		n += copy(name[n:], b[off+1:off+1+l])
		name[n] = '.'
		n++
		off += 1 + l
	}
	if n == 0 || off+4 > len(b) || binary.BigEndian.Uint16(b[off+2:]) != dns.ClassINET {
		return q, 0, false
	}
	q.qtype = binary.BigEndian.Uint16(b[off:])
	off += 4
	size = dns.MinMsgSize
	if ar == 1 {
		// OPT: root name, type 41, class = payload size, ext-rcode, version, flags, rdlen 0.
		if off+11 != len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != dns.TypeOPT ||
			b[off+6] != 0 || binary.BigEndian.Uint16(b[off+9:]) != 0 {
			return q, 0, false
		}
		size = int(min(max(binary.BigEndian.Uint16(b[off+3:]), dns.MinMsgSize), ednsSize))
		q.edns, q.do = true, b[off+7]&0x80 != 0
		off += 11
	}
	if off != len(b) {
		return q, 0, false
	}
	q.id = binary.BigEndian.Uint16(b)
	q.rd = b[2]&0x01 != 0
	q.cd = b[3]&0x10 != 0
	q.name = string(name[:n])
	return q, size, true
}

// plainLabelByte reports whether c appears unescaped in a name's text form.
func plainLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// formErr returns a FORMERR reply (header only) to a query that could not be
// unpacked, or nil when not even its header is a query's.
func formErr(b []byte, out []byte) []byte {
	if len(b) < 12 || b[2]&0x80 != 0 {
		return nil
	}
	out = append(out, b[0], b[1], 0x80|b[2]&0x78, 0x80|dns.RcodeFormatError)
	return append(out, make([]byte, 8)...)
}

// maxReadFailures is how many consecutive read errors end serveUDP.
const maxReadFailures = 100

var _ dns.ResponseWriter = (*udpWriter)(nil)

// udpWriter is the dns.ResponseWriter of a query serveUDP handed to ServeDNS.
type udpWriter struct {
	pc     *net.UDPConn
	remote netip.AddrPort
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.pc.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.remote) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.pc.WriteToUDPAddrPort(b, w.remote)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.pc.WriteToUDPAddrPort(b, w.remote) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}
