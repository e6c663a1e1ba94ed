package sidecar

import (
	"io"
	"net/http"
	"net/netip"
	"time"
)

// Raw TCP from the app outside interception mode. Without iptables there
// is no original destination to restore, so the app names it: it opens an
// HTTP/1.1 CONNECT tunnel to the 15001 capture listener (the socket its
// HTTP calls go to) with the destination's address, as DNS gave it (the
// service's VIP) and port. That address is the connection's original
// destination: it is handed to the outbound listener of that address, or
// of 0.0.0.0 and the port, as Envoy's virtualOutbound hands a redirected
// connection over (use_original_dst, active_tcp_socket.cc
// findActiveListenerByAddress), that listener's filter chain is matched
// (chainmatch.go) and its tcp_proxy serves the tunnel's bytes. The CONNECT
// exchange itself is the one divergence from Envoy: docs/fidelity.md.

// serveConnect opens a CONNECT tunnel into the outbound TCP listener of
// the destination the request names.
func (s *Sidecar) serveConnect(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	dst, err := netip.ParseAddrPort(r.Host)
	if err != nil {
		// The destination must be an address, as iptables would have it.
		http.Error(w, "CONNECT needs the destination as ip:port (the service's VIP), got "+r.Host, http.StatusBadRequest)
		return
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	info := &connInfo{dst: dst, transport: "raw_buffer"}
	var chain *chainConf
	if lc := st.listenerFor(dst); lc != nil && !lc.bind {
		chain = lc.matchChain(info)
	}
	if chain == nil || chain.tcp == nil {
		// Envoy would send a destination no listener claims through the
		// PassthroughCluster, and an HTTP port's bytes to its HCM; the
		// tunnel carries only what a TCP listener serves.
		http.Error(w, "no outbound TCP listener for "+dst.String(), http.StatusNotFound)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "CONNECT needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	defer conn.Close()
	s.tcpProxy(&bufferedConn{Conn: conn, r: brw.Reader}, chain.tcp, info)
}
