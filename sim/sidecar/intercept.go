package sidecar

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/meshbench/meshbench/sim/h1"
)

// The interception data path (Config.Intercept): what Envoy does with a
// connection istio-iptables redirected to it. A bound listener (istiod's
// virtualOutbound 0.0.0.0:15001, virtualInbound 0.0.0.0:15006, a gateway's
// 0.0.0.0_8080) accepts raw TCP; its listener filters restore the original
// destination and inspect the first bytes; use_original_dst hands the
// connection to the listener of that destination; the filter chain is
// chosen as Envoy's filter_chain_manager_impl.cc does (chainmatch.go); and
// the chain's terminal filter serves it: an HTTP connection manager (one
// http.Server per bound listener, fed the chosen connections, each
// request carrying its connection's chain and original destination) or a
// tcp_proxy (tcpproxy.go).

// connInfo is what a connection's listener filters found out.
type connInfo struct {
	local, src netip.AddrPort
	// dst is the original destination (SO_ORIGINAL_DST) when original_dst
	// restored it, else the local address.
	dst       netip.AddrPort
	transport string // "tls" or "raw_buffer"
	sni       string
	alpn      []string // from the ClientHello, or "http/1.1", "http/1.0", "h2c" from http_inspector
	// inbound: the listener's traffic_direction is INBOUND; security and
	// principal are the connection's mTLS (mutual_tls or none) and peer,
	// for the TCP metrics the destination reports.
	inbound             bool
	security, principal string
}

// chainConn is a connection on its way to a chain's terminal filter.
type chainConn struct {
	net.Conn
	r     *bufio.Reader // holds the bytes the inspectors peeked
	info  *connInfo
	lc    *listenerConf
	chain *chainConf
}

func (c *chainConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// CloseWrite half-closes, for tcp_proxy.
func (c *chainConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type connKey struct{}

// connOf is the intercepted connection a request came on, or nil.
func connOf(ctx context.Context) *chainConn {
	c, _ := ctx.Value(connKey{}).(*chainConn)
	return c
}

// interceptServer is one bound listener under interception.
type interceptServer struct {
	s      *Sidecar
	name   string
	direct bool // no hand-off: an inbound TCP port outside interception
	lis    net.Listener
	conns  chan net.Conn // to srv, through chanListener
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// serveIntercept binds addr for the listener name. direct is an inbound
// TCP port outside interception (the pod's address and the port, no
// iptables): its connections take the listener's chains, never a hand-off.
func (s *Sidecar) serveIntercept(addr, key, name string, direct bool) (*boundServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ic := &interceptServer{s: s, name: name, lis: lis, direct: direct, conns: make(chan net.Conn), done: make(chan struct{}), open: map[net.Conn]struct{}{}}
	b := &boundServer{key: key, done: make(chan struct{}), ic: ic, srv: &h1.Server{
		Handler:           http.HandlerFunc(s.serveIntercepted),
		Protocols:         downstreamProtocols(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ctx = withConnCert(ctx, c)
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if cc, ok := c.(*chainConn); ok {
				return context.WithValue(ctx, connKey{}, cc)
			}
			return ctx
		},
	}}
	go func() {
		defer close(b.done)
		_ = b.srv.Serve(chanListener{ic})
	}()
	ic.wg.Add(1)
	go ic.acceptLoop()
	return b, nil
}

// chanListener hands the HCM chains' connections to the http.Server.
type chanListener struct{ ic *interceptServer }

func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ic.conns:
		return c, nil
	case <-l.ic.done:
		return nil, net.ErrClosed
	}
}
func (l chanListener) Close() error   { return nil }
func (l chanListener) Addr() net.Addr { return l.ic.lis.Addr() }

func (ic *interceptServer) acceptLoop() {
	defer ic.wg.Done()
	for {
		c, err := ic.lis.Accept()
		if err != nil {
			select {
			case <-ic.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !ic.track(c) {
			c.Close()
			return
		}
		ic.wg.Add(1)
		go func() {
			defer ic.wg.Done()
			ic.handle(c)
		}()
	}
}

// track records an open connection, so that close can end it as a proxy
// process that exits does; it reports false once closing.
func (ic *interceptServer) track(c net.Conn) bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	select {
	case <-ic.done:
		return false
	default:
	}
	ic.open[c] = struct{}{}
	return true
}

func (ic *interceptServer) untrack(c net.Conn) {
	ic.mu.Lock()
	delete(ic.open, c)
	ic.mu.Unlock()
}

func (ic *interceptServer) close() {
	ic.once.Do(func() {
		ic.mu.Lock()
		close(ic.done)
		for c := range ic.open {
			c.Close()
		}
		ic.mu.Unlock()
		ic.lis.Close()
	})
	ic.wg.Wait()
}

// handle takes a connection from accept to its chain's terminal filter.
func (ic *interceptServer) handle(c net.Conn) {
	st := ic.s.state.Load()
	lc := st.listeners[ic.name]
	if lc == nil {
		ic.closeConn(c)
		return
	}
	info := &connInfo{local: addrPortOf(c.LocalAddr()), src: addrPortOf(c.RemoteAddr())}
	info.dst = info.local
	if lc.originalDst {
		// original_dst.cc: the local address becomes SO_ORIGINAL_DST's
		// answer; when there is none the connection keeps its own.
		if d, ok := originalDst(c); ok {
			info.dst = d
		}
	}
	target := lc
	if lc.handOff && !ic.direct {
		// ActiveTcpSocket::newConnection (active_tcp_socket.cc): a
		// connection whose destination was restored goes to the listener
		// of that address, exactly or on 0.0.0.0 (findActiveListenerByAddress),
		// with hand-off off; it runs that listener's filters. Without one
		// the virtual listener's own chains take it.
		if t := st.listenerFor(info.dst); t != nil {
			target = t
		}
	}
	cc := &chainConn{Conn: c, r: bufio.NewReaderSize(c, maxInspect), info: info, lc: target}
	if !inspect(cc, target) {
		ic.closeConn(c)
		return
	}
	chain := target.matchChain(info)
	if chain == nil {
		// "closing connection from ...: no matching filter chain found"
		ic.s.log.Debug("no matching filter chain", "listener", target.name, "dst", info.dst, "transport", info.transport, "alpn", info.alpn)
		ic.closeConn(c)
		return
	}
	cc.chain = chain
	var conn net.Conn = cc
	if chain.tls != nil {
		conn = tls.Server(cc, ic.s.interceptServerTLS(chain.tls))
	}
	switch {
	case chain.hcm:
		select {
		case ic.conns <- conn:
			// The http.Server owns it now; it closes it on Close.
			ic.untrack(c)
		case <-ic.done:
			ic.closeConn(c)
		}
	case chain.tcp != nil:
		defer ic.closeConn(c)
		if tc, ok := conn.(*tls.Conn); ok {
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				return
			}
			_ = tc.SetDeadline(time.Time{})
		}
		var principal string
		info.inbound, info.security = target.inbound, "none"
		if tc, ok := conn.(*tls.Conn); ok {
			info.security = "mutual_tls"
			if len(tc.ConnectionState().PeerCertificates) > 0 {
				principal = principalOf(tc.ConnectionState().PeerCertificates[0])
			}
		}
		info.principal = principal
		if len(chain.netRBAC) > 0 {
			if !allowed(chain.netRBAC, rbacInput{principal: principal}) {
				// Envoy's network RBAC closes a denied connection
				// (rbac_filter.cc onData: closeConnection).
				ic.s.log.Debug("connection denied by network RBAC", "listener", target.name, "dst", info.dst, "principal", principal)
				return
			}
		}
		ic.s.tcpProxy(conn, chain.tcp, info)
	default:
		ic.closeConn(c)
	}
}

func (ic *interceptServer) closeConn(c net.Conn) {
	c.Close()
	ic.untrack(c)
}

// interceptServerTLS is a chain's DownstreamTlsContext as Envoy serves it:
// with no overlap between the client's ALPN and the context's, BoringSSL
// goes on without ALPN, so the server offers none rather than fail the
// handshake as Go's would (istio-http/1.1 against h2,http/1.1).
func (s *Sidecar) interceptServerTLS(d *downstreamTLS) *tls.Config {
	return boringALPN(s.serverTLS(d))
}

// listenerFor is the listener of an original destination: the one bound
// to exactly that address, else the one on 0.0.0.0 (or ::) and its port.
func (st *state) listenerFor(dst netip.AddrPort) *listenerConf {
	var wild *listenerConf
	for _, l := range st.listeners {
		if l.port != int(dst.Port()) {
			continue
		}
		if l.addr == dst.Addr() {
			return l
		}
		if l.addr.IsUnspecified() && l.addr.Is4() == dst.Addr().Is4() {
			wild = l
		}
	}
	return wild
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// serveIntercepted serves a request of an HCM chain chosen under interception.
func (s *Sidecar) serveIntercepted(w http.ResponseWriter, r *http.Request) {
	cc := connOf(r.Context())
	if cc == nil || cc.chain == nil {
		panic(http.ErrAbortHandler)
	}
	chain := cc.chain
	if chain.normalizePath {
		normalizePath(r)
	}
	st := s.state.Load()
	if cc.lc.inbound {
		s.serveInboundChain(w, r, st, chain)
		return
	}
	s.metrics.downstream(chain, r)
	chain.clientCert.mutate(r, s.cfg.Principal)
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, st.routesOf(chain), chain, host, "source")
}

// interceptBind is where a listener under interception binds.
func (s *Sidecar) interceptBind(lc *listenerConf) string {
	a := lc.addr
	if a.IsUnspecified() && s.cfg.InterceptBindIP.IsValid() {
		a = s.cfg.InterceptBindIP
	}
	return netip.AddrPortFrom(a, uint16(lc.port)).String()
}

// isTimeout reports a read deadline that passed.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
