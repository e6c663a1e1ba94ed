//go:build !linux

package sidecar

import (
	"net"
	"net/netip"
)

// originalDst needs Linux's SO_ORIGINAL_DST; elsewhere no destination is restored.
func originalDst(net.Conn) (netip.AddrPort, bool) { return netip.AddrPort{}, false }
