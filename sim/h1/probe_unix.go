//go:build unix

package h1

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// peerGone looks at an idle connection without waiting: the server has
// closed it (end of stream or an error), or, in cleartext, sent bytes no
// request asked for. net/http's Transport learns the same from the read it
// keeps waiting on every idle connection (readLoop); this asks the socket
// once, at the connection's next use. A read with a past deadline would not
// do: Go's poller answers it without asking the socket.
func peerGone(c net.Conn) bool {
	_, isTLS := c.(*tls.Conn)
	if isTLS {
		c = c.(*tls.Conn).NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var n int
	var rerr error
	var b [1]byte
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // one look, no wait
	}); err != nil {
		return true
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN):
		return false
	case rerr != nil, n == 0:
		return true
	}
	// TLS sends records of its own while a connection is idle (TLS 1.3
	// session tickets): those are read with the next answer.
	return !isTLS
}
