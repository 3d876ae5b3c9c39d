package filter

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// CIDRSet is an immutable set of IP prefixes: merged, sorted address ranges
// searched by binary search, no pointers. IPv4-mapped IPv6 addresses
// ("::ffff:10.1.2.3") are matched as the IPv4 address they carry, both in
// the set and in queries.
type CIDRSet struct {
	v4 []ipRange // IPv4, in the low 32 bits of lo.lo/hi.lo
	v6 []ipRange
}

type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		if a.hi == ^uint64(0) {
			return a, false
		}
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

type ipRange struct{ lo, hi u128 }

// ParseCIDRSet parses prefixes ("10.0.0.0/8", "2001:db8::/32") and single
// addresses ("192.0.2.7", taken as /32 or /128). Host bits are ignored
// ("10.1.2.3/8" means 10.0.0.0/8). The error names the first bad entry.
func ParseCIDRSet(entries []string) (*CIDRSet, error) {
	s := &CIDRSet{}
	for _, e := range entries {
		p, err := parsePrefix(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("bad CIDR %q: %w", e, err)
		}
		p = p.Masked()
		lo := addrBits(p.Addr())
		hi := lastInPrefix(lo, p.Bits(), p.Addr().Is4())
		if p.Addr().Is4() {
			s.v4 = append(s.v4, ipRange{lo, hi})
		} else {
			s.v6 = append(s.v6, ipRange{lo, hi})
		}
	}
	s.v4, s.v6 = mergeRanges(s.v4), mergeRanges(s.v6)
	return s, nil
}

func parsePrefix(e string) (netip.Prefix, error) {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return p, err
		}
		if a := p.Addr(); a.Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix shorter than /96")
			}
			return a.Unmap().Prefix(bits)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("zones are not allowed")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func addrBits(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// lastInPrefix sets the host bits of lo.
func lastInPrefix(lo u128, bits int, is4 bool) u128 {
	if is4 {
		host := 32 - bits
		return u128{0, lo.lo | (uint64(1)<<host - 1)}
	}
	host := 128 - bits
	switch {
	case host == 0:
		return lo
	case host <= 64:
		return u128{lo.hi, lo.lo | (^uint64(0) >> (64 - host))}
	default:
		return u128{lo.hi | (^uint64(0) >> (128 - host)), ^uint64(0)}
	}
}

// mergeRanges sorts ranges and merges overlapping or adjacent ones.
func mergeRanges(rs []ipRange) []ipRange {
	slices.SortFunc(rs, func(a, b ipRange) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next, ok := last.hi.next()
			if !ok || r.lo.cmp(next) <= 0 {
				if r.hi.cmp(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// Match reports whether addr is in the set. It does not allocate.
func (s *CIDRSet) Match(addr netip.Addr) bool {
	if s == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	rs := s.v6
	if addr.Is4() {
		rs = s.v4
	}
	x := addrBits(addr)
	// First range whose hi >= x.
	i, _ := slices.BinarySearchFunc(rs, x, func(r ipRange, x u128) int { return r.hi.cmp(x) })
	return i < len(rs) && rs[i].lo.cmp(x) <= 0
}

// Len returns the number of merged ranges.
func (s *CIDRSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.v4) + len(s.v6)
}
