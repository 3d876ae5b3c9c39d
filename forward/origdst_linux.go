package forward

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ip6tSoOriginalDst is IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h),
// which x/sys/unix does not name; it equals SO_ORIGINAL_DST (80) on SOL_IPV6.
const ip6tSoOriginalDst = 80

// originalDst returns the destination a connection redirected by netfilter
// (iptables/nftables REDIRECT or DNAT) was addressed to, read with
// SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6). For a connection that
// was not redirected it is the connection's own local address.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	var ap netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		if local.Addr().Is4() || local.Addr().Is4In6() {
			mr, e := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
			if e != nil {
				serr = e
				return
			}
			// struct sockaddr_in: family(2) port(2, network order) addr(4)
			port := binary.BigEndian.Uint16(mr.Multiaddr[2:4])
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(mr.Multiaddr[4:8])), port)
			return
		}
		// The kernel writes a struct sockaddr_in6, which IPv6MTUInfo begins with.
		mi, e := unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, ip6tSoOriginalDst)
		if e != nil {
			serr = e
			return
		}
		pb := (*[2]byte)(unsafe.Pointer(&mi.Addr.Port))
		ap = netip.AddrPortFrom(netip.AddrFrom16(mi.Addr.Addr), binary.BigEndian.Uint16(pb[:]))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ap, nil
}
