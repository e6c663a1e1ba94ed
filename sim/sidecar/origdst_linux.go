package sidecar

import (
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// originalDst is the destination a connection had before istio-iptables
// REDIRECTed it: getsockopt(SOL_IP, SO_ORIGINAL_DST), as Envoy's
// original_dst listener filter asks (Network::Utility::getOriginalDst,
// source/common/network/utility.cc). IPv4 only.
func originalDst(c net.Conn) (netip.AddrPort, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, false
	}
	var ap netip.AddrPort
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		// struct sockaddr_in fits the 16 bytes of an ipv6_mreq.
		m, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if err != nil {
			gerr = err
			return
		}
		a := m.Multiaddr
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{a[4], a[5], a[6], a[7]}), uint16(a[2])<<8|uint16(a[3]))
	}); err != nil || gerr != nil {
		return netip.AddrPort{}, false
	}
	return ap, true
}
