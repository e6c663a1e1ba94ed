//go:build !unix

package h1

import "net"

// peerGone cannot look at a socket here: a request on a connection the
// server closed is sent again as RoundTrip allows.
func peerGone(net.Conn) bool { return false }
