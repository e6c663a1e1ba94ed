package sidecar

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshbench/meshbench/sim/istionames"
)

// tcpProxy is Envoy's tcp_proxy network filter (source/common/tcp_proxy/
// tcp_proxy.cc): it picks the cluster (weighted_clusters by weight), a
// host (the original destination on an ORIGINAL_DST cluster), connects
// within connect_timeout up to max_connect_attempts times, and copies both
// ways, passing on each half-close, until both sides are done or nothing
// moved for idle_timeout. No cluster, no host (BlackHoleCluster: a STATIC
// cluster without endpoints) or no connection closes the downstream, as
// Envoy does with flags NC, UH and UF. Each connection is counted in
// Istio's TCP metrics (metrics.go), as the reporter of its direction.
func (s *Sidecar) tcpProxy(down net.Conn, tp *tcpProxyConf, info *connInfo) {
	st := s.state.Load()
	tc := &tcpConn{reporter: "source", source: s.self, dest: unknownPeer, flags: flagNone, security: "unknown"}
	if info.inbound {
		tc.reporter, tc.source, tc.dest, tc.security = "destination", unknownPeer, s.self, info.security
		tc.service = istionames.ServiceHost(s.cfg.App, s.cfg.Namespace)
		if info.principal != "" {
			tc.source.principal = info.principal
		}
	}
	// Opened is counted once the upstream is known (its labels name it),
	// or at the end of a connection that never got one (flags NC, UH, UF).
	var sent, received int64
	opened := false
	var cl *connLog
	if len(tp.accessLogs) > 0 && s.logFiles.begin() {
		cl = &connLog{start: time.Now(), info: info, down: down}
	}
	defer func() {
		if !opened {
			s.metrics.tcpOpened(tc)
		}
		s.metrics.tcpClosed(tc, sent, received)
		if cl != nil {
			s.writeConnLog(tp.accessLogs, cl, tc.flags, sent, received)
		}
	}()
	name := tp.cluster
	if len(tp.weighted) > 0 {
		n := s.randUint64() % tp.total
		for _, w := range tp.weighted {
			if n < w.weight {
				name = w.name
				break
			}
			n -= w.weight
		}
	}
	if cl != nil {
		cl.cluster = name
	}
	if _, _, _, h, ok := istionames.ParseClusterName(name); ok && h != "" && !info.inbound {
		tc.service = h
	}
	u := st.clusters[name]
	if u == nil || !u.warm.Load() {
		s.log.Debug("tcp_proxy: no cluster", "cluster", name, "flag", flagNoCluster)
		tc.flags = flagNoCluster
		return
	}
	var up net.Conn
	for attempt := 0; attempt < tp.maxAttempts && up == nil; attempt++ {
		h := u.hostFor(info.dst)
		if h == nil {
			s.log.Debug("tcp_proxy: no healthy upstream", "cluster", name, "flag", flagNoHealthy)
			tc.flags = flagNoHealthy
			return
		}
		if cl != nil {
			cl.upstream = h.addr
		}
		c, err := u.dialTCP(s.ctx, h)
		if err != nil {
			s.log.Debug("tcp_proxy: connect failed", "cluster", name, "host", h.addr, "err", err, "flag", flagConnectFailure)
			tc.flags = flagConnectFailure
			continue
		}
		tc.flags = flagNone
		if !info.inbound && h.workload != "" {
			tc.dest = peer{workload: h.workload, namespace: h.namespace, app: h.app, version: h.version, principal: "unknown"}
			if t, ok := c.(*tls.Conn); ok && len(t.ConnectionState().PeerCertificates) > 0 {
				tc.dest.principal = principalOf(t.ConnectionState().PeerCertificates[0])
			}
		}
		up = c
		if cl != nil {
			cl.upstreamLocal = c.LocalAddr().String()
		}
	}
	if up == nil {
		return
	}
	s.metrics.tcpOpened(tc)
	opened = true
	received, sent = splice(down, up, tp.idle)
}

// hostFor is the host a connection to dst goes to: dst itself on an
// ORIGINAL_DST cluster, else the balancer's pick.
func (u *upstream) hostFor(dst netip.AddrPort) *host {
	if u.conf.Load().originalDst {
		return u.originalDstHost(dst)
	}
	return u.pick(nil, 1, "", false)
}

// originalDstHost is the ORIGINAL_DST cluster's host for dst, made on
// first use (OriginalDstCluster::LoadBalancer::chooseHost,
// source/extensions/clusters/original_dst/original_dst_cluster.cc) and
// marked used, so that the cleanup keeps it.
func (u *upstream) originalDstHost(dst netip.AddrPort) *host {
	if !dst.IsValid() {
		return nil
	}
	addr := dst.String()
	u.odMu.Lock()
	defer u.odMu.Unlock()
	if u.odHosts == nil {
		u.odHosts = map[string]*odHost{}
	}
	h := u.odHosts[addr]
	if h == nil {
		h = &odHost{host: &host{endpointInfo: endpointInfo{addr: addr, weight: 1}}}
		u.odHosts[addr] = h
	}
	h.used = true
	return h.host
}

type odHost struct {
	host *host
	used bool
}

// cleanupOriginalDst removes the hosts no connection used since the last
// cleanup (OriginalDstCluster::cleanup), every cleanup_interval.
func (u *upstream) cleanupOriginalDst() {
	u.odMu.Lock()
	defer u.odMu.Unlock()
	removed := false
	for a, h := range u.odHosts {
		if !h.used && h.host.active.Load() == 0 {
			delete(u.odHosts, a)
			removed = true
			continue
		}
		h.used = false
	}
	if removed {
		u.transport.CloseIdleConnections()
		u.client.CloseIdleConnections()
	}
}

// dialerFor is a cluster's dialer: connect_timeout and upstream_bind_config.
func dialerFor(c *clusterConf) *net.Dialer {
	d := &net.Dialer{Timeout: c.connectTimeout, KeepAlive: 30 * time.Second}
	if c.bindIP.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.bindIP.AsSlice()}
	}
	return d
}

// dialTCP connects to a host for tcp_proxy, with the cluster's TLS when it
// applies to the host, offering the context's own alpn_protocols.
func (u *upstream) dialTCP(ctx context.Context, h *host) (net.Conn, error) {
	c := u.conf.Load()
	ctx, cancel := context.WithTimeout(ctx, c.connectTimeout)
	defer cancel()
	network, addr := "tcp", h.addr
	if p, ok := pipes.Load(addr); ok {
		network, addr = "unix", p.(string)
	}
	conn, err := dialerFor(c).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if c.tls != nil && u.tlsFor != nil && (!c.tlsByMatch || h.tlsMode == "istio") {
		cfg := u.tlsFor(c.tls).Clone()
		cfg.NextProtos = c.tls.alpn
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	return conn, nil
}

// splice copies a→b and b→a. A side's end of data half-closes the other
// side's write; an error, or idle (0: none) without a byte either way,
// closes both.
// It returns the bytes copied a→b and b→a.
func splice(a, b net.Conn, idle time.Duration) (ab, ba int64) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	done := make(chan struct{})
	if idle > 0 {
		go func() {
			t := time.NewTimer(idle)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					rem := idle - time.Since(time.Unix(0, last.Load()))
					if rem <= 0 {
						closeBoth()
						return
					}
					t.Reset(rem)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn, n *int64) {
		defer wg.Done()
		bp := bodyBuffers.Get().(*[]byte)
		defer bodyBuffers.Put(bp)
		buf := *bp
		for {
			k, err := src.Read(buf)
			if k > 0 {
				last.Store(time.Now().UnixNano())
				*n += int64(k)
				if _, werr := dst.Write(buf[:k]); werr != nil {
					closeBoth()
					return
				}
			}
			if err == io.EOF {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
					return
				}
				closeBoth()
				return
			}
			if err != nil {
				closeBoth()
				return
			}
		}
	}
	wg.Add(2)
	go cp(b, a, &ab)
	go cp(a, b, &ba)
	wg.Wait()
	close(done)
	closeBoth()
	return ab, ba
}
