package resolver

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The wire form of a cached answer lets a DNS server answer a hit by copying
// bytes and patching the ID, the question's case and the TTLs, instead of
// copying, adjusting and packing a dns.Msg.

// wireForm packs m without its OPT records and returns the bytes and the offset
// of every record's TTL; nil when m cannot be packed or parsed back.
func wireForm(m *dns.Msg) (wire []byte, ttlOffs []int) {
	c := *m
	c.Extra = nil
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			c.Extra = append(c.Extra, rr)
		}
	}
	c.Compress = true
	wire, err := c.Pack()
	if err != nil {
		return nil, nil
	}
	ttlOffs, ok := ttlOffsets(wire)
	if !ok {
		return nil, nil
	}
	return wire, ttlOffs
}

// ttlOffsets walks a packed message and returns the offsets of its records' TTLs.
func ttlOffsets(b []byte) ([]int, bool) {
	if len(b) < 12 {
		return nil, false
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrs := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := 12
	var ok bool
	for range qd {
		if off, ok = skipName(b, off); !ok || off+4 > len(b) {
			return nil, false
		}
		off += 4
	}
	offs := make([]int, 0, rrs)
	for range rrs {
		if off, ok = skipName(b, off); !ok || off+10 > len(b) {
			return nil, false
		}
		offs = append(offs, off+4)
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
		if off > len(b) {
			return nil, false
		}
	}
	return offs, off == len(b)
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(b []byte, off int) (int, bool) {
	for off < len(b) {
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(b)
		case l&0xC0 != 0:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// cnameTargets returns the CNAME targets in m's answer (lowercased, no trailing
// dot).
func cnameTargets(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			out = append(out, strings.TrimSuffix(strings.ToLower(c.Target), "."))
		}
	}
	return out
}

// AppendCached appends to dst the cached reply to the question (name, qtype, class
// IN, DO and CD bits) in wire form — with ID id, the question's name written as
// given (its case preserved), TTLs aged and no OPT record — and returns the CNAME
// targets of its answer (shared: read only), for cloaking checks. ok is false on a
// miss or when the name cannot be written in place; the caller then uses Exchange.
// The header flags are the upstream's: the caller sets its own.
func (r *Resolver) AppendCached(dst []byte, id uint16, name string, qtype uint16, do, cd bool) (out []byte, cnames []string, ok bool) {
	if r.cache == nil || strings.IndexByte(name, '\\') >= 0 {
		return dst, nil, false
	}
	k := cacheKey{name: strings.ToLower(name), qtype: qtype, qclass: dns.ClassINET, do: do, cd: cd}
	if !strings.HasSuffix(k.name, ".") {
		return dst, nil, false
	}
	now := r.now()
	e := r.cache.get(k, now)
	if e == nil || e.wire == nil {
		return dst, nil, false
	}
	start := len(dst)
	dst = append(dst, e.wire...)
	b := dst[start:]
	binary.BigEndian.PutUint16(b, id)
	// The question name: same labels, the asker's case.
	off := 12
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if off >= len(b) || int(b[off]) != len(label) {
			return dst[:start], nil, false
		}
		copy(b[off+1:], label)
		off += 1 + len(label)
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, o := range e.ttlOffs {
		ttl := binary.BigEndian.Uint32(b[o:])
		binary.BigEndian.PutUint32(b[o:], ttl-min(ttl, age))
	}
	return dst, e.cnames, true
}
