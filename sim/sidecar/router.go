package sidecar

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Headers the sidecar reads or writes.
const (
	// HeaderConfigVersion carries the RDS version a response was routed under,
	// so a run can tell which config served each request.
	HeaderConfigVersion = "x-meshbench-config-version"
	// HeaderAttemptCount is Envoy's x-envoy-attempt-count; Istio turns it on for every virtual host.
	HeaderAttemptCount = "x-envoy-attempt-count"
	// Peer metadata as Istio's HTTP metadata exchange sends it between sidecars
	// (x-envoy-peer-metadata-id and x-envoy-peer-metadata); ours carries
	// workload;namespace;app;version;principal as text rather than a protobuf Struct.
	HeaderPeerID       = "x-envoy-peer-metadata-id"
	HeaderPeerMetadata = "x-envoy-peer-metadata"
	// HeaderResponseFlags carries Envoy's response flags of a reply (when not "-"), so callers can count them.
	HeaderResponseFlags = "x-meshbench-response-flags"
	headerRequestID     = "x-request-id"
)

// Canonical forms of the peer headers, to set them without canonicalising on each request.
var (
	headerPeerIDKey       = http.CanonicalHeaderKey(HeaderPeerID)
	headerPeerMetadataKey = http.CanonicalHeaderKey(HeaderPeerMetadata)
)

// Response flags, as Envoy's access log prints them.
const (
	flagNone            = "-"
	flagNoRoute         = "NR"
	flagNoCluster       = "NC"
	flagNoHealthy       = "UH"
	flagConnectFailure  = "UF"
	flagUpstreamTimeout = "UT"
	flagRetryLimit      = "URX"
	// The HTTP/1.1 upstream closed or reset its connection before the
	// answer was whole: Envoy's HTTP/1 codec resets the stream with reason
	// ConnectionTermination, flag UC (UR is a remote stream reset, which
	// only HTTP/2 has; the sidecar speaks HTTP/1.1 upstream).
	flagUpstreamTermination = "UC"
	flagDownstreamCancel    = "DC"
	flagOverflow            = "UO"
	flagDelayInjected       = "DI"
	flagFaultInjected       = "FI"
)

// maxRetryBuffer is the body size up to which a request can be retried,
// Envoy's default per_connection_buffer_limit_bytes (1 MiB).
const maxRetryBuffer = 1 << 20

func (s *Sidecar) handler(key string, port int) http.Handler {
	switch {
	case key == "outbound":
		return http.HandlerFunc(s.serveOutbound)
	case strings.HasPrefix(key, "inbound:"):
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveInbound(w, r, port) })
	default:
		name := strings.TrimPrefix(key, "router:")
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveRouter(w, r, name) })
	}
}

// serveOutbound routes an app's call by its Host through the outbound
// listener of the destination port.
func (s *Sidecar) serveOutbound(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	host, port := hostPort(r.Host, 80)
	chain := st.outboundChain(port)
	if chain != nil {
		chain.clientCert.mutate(r, s.cfg.Principal)
	}
	s.route(w, r, st, st.routesOf(chain), host, "source")
}

// serveRouter is the gateway: its listener's RDS routes the request.
func (s *Sidecar) serveRouter(w http.ResponseWriter, r *http.Request, listenerName string) {
	st := s.state.Load()
	var rt *routeTable
	if l := st.listeners[listenerName]; l != nil && len(l.chains) > 0 {
		l.chains[0].clientCert.mutate(r, s.cfg.Principal)
		rt = st.routesOf(&l.chains[0])
	}
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, rt, host, "source")
}

// serveInbound hands a request to the app through the inline route of the
// virtualInbound chain for this port.
func (s *Sidecar) serveInbound(w http.ResponseWriter, r *http.Request, port int) {
	st := s.state.Load()
	var chain *chainConf
	if l := st.listeners[xdsgen.VirtualInboundListener]; l != nil {
		for i, c := range l.chains {
			if c.destPort == port && (c.tls != nil) == (r.TLS != nil) {
				chain = &l.chains[i]
			}
		}
	}
	if chain == nil {
		// The listener was rebound since this connection was sorted: no chain takes it now.
		panic(http.ErrAbortHandler)
	}
	principal := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		principal = principalOf(r.TLS.PeerCertificates[0])
	}
	// Istio's inbound sidecar appends the client's certificate details
	// (APPEND_FORWARD); the chain says what to do.
	chain.clientCert.mutate(r, s.cfg.Principal)
	if !allowed(chain.rbac, rbacInput{r: r, principal: principal}) {
		x := &exchange{start: time.Now(), reporter: "destination", source: peerFromHeaders(r.Header), dest: s.self, flags: flagNone,
			service: s.cfg.App + "." + s.cfg.Namespace + ".svc.cluster.local", security: securityOf(r)}
		if principal != "" {
			x.source.principal = principal
		}
		defer s.finish(x)
		// Envoy's RBAC filter answers 403 "RBAC: access denied" with flag RBAC... Istio shows it as response code 403.
		x.code, x.flags = http.StatusForbidden, "-"
		w.Header().Set("content-type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "RBAC: access denied")
		return
	}
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, chain.inline, host, "destination")
}

func securityOf(r *http.Request) string {
	if r.TLS != nil {
		return "mutual_tls"
	}
	return "none"
}

func hostPort(h string, def int) (string, int) {
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		return strings.ToLower(h), def
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return strings.ToLower(host), def
	}
	return strings.ToLower(host), n
}

// exchange is one request's trip through the proxy.
type exchange struct {
	start    time.Time
	reporter string
	source   peer
	dest     peer
	service  string
	code     int
	flags    string
	retries  int
	// retryOverflow: a retry was refused by max_retries (flag UO).
	retryOverflow bool
	security      string // connection_security_policy: mutual_tls or none (unknown at the source)
}

func (s *Sidecar) route(w http.ResponseWriter, r *http.Request, st *state, rt *routeTable, host, reporter string) {
	x := &exchange{start: time.Now(), reporter: reporter, dest: unknownPeer, flags: flagNone, security: "unknown"}
	if reporter == "destination" {
		x.source = peerFromHeaders(r.Header)
		x.dest = s.self
		x.service = s.cfg.App + "." + s.cfg.Namespace + ".svc.cluster.local"
		x.security = securityOf(r)
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			x.source.principal = principalOf(r.TLS.PeerCertificates[0])
		}
	} else {
		x.source = s.self
	}
	defer s.finish(x)
	if rt == nil {
		s.local(w, x, http.StatusNotFound, flagNoRoute, "")
		return
	}
	vh := rt.virtualHost(host)
	var cr *compiledRoute
	if vh != nil {
		cr = vh.match(r)
	}
	if cr == nil {
		s.local(w, x, http.StatusNotFound, flagNoRoute, "")
		return
	}
	if rt.version != "" {
		w.Header().Set(HeaderConfigVersion, rt.version)
	}
	clusterName := cr.pickCluster(s.randUint64)
	if _, _, _, h, ok := xdsgen.ParseClusterName(clusterName); ok && h != "" {
		x.service = h
	}
	// The fault filter runs before the router: its abort never reaches the
	// retry policy (Envoy HTTP filter chain order in Istio's sidecar).
	if f := cr.fault; f != nil {
		if f.delay > 0 && s.chance(f.delayPerMil) {
			s.metrics.faultsDelayed.WithLabelValues(clusterName).Inc()
			x.flags = flagDelayInjected
			if !sleepCtx(r.Context(), f.delay) {
				// DelayInjected is set when the delay starts, and the
				// caller's cancel adds DownstreamConnectionTermination; the
				// flags print in the ResponseFlag enum's order
				// (envoy/stream_info/stream_info.h), DI before DC.
				x.code, x.flags = 0, flagDelayInjected+","+flagDownstreamCancel
				return
			}
		}
		if f.abortStatus != 0 && s.chance(f.abortPerMil) {
			s.metrics.faultsAborted.WithLabelValues(clusterName).Inc()
			flags := flagFaultInjected
			if x.flags == flagDelayInjected {
				flags = flagDelayInjected + "," + flagFaultInjected
			}
			s.local(w, x, f.abortStatus, flags, "fault filter abort")
			return
		}
	}
	u := st.clusters[clusterName]
	if u == nil || !u.warm.Load() {
		s.local(w, x, http.StatusServiceUnavailable, flagNoCluster, "")
		return
	}
	var shadows []shadow
	for _, m := range cr.mirrors {
		if mu := st.clusters[m.cluster]; mu != nil && s.chance(m.perMil) {
			shadows = append(shadows, shadow{u: mu, noSuffix: m.noSuffix})
		}
	}
	s.forward(w, r, x, vh, cr, u, shadows)
}

// chance draws true with probability perMil/1e6.
func (s *Sidecar) chance(perMil uint32) bool {
	return perMil >= 1_000_000 || uint32(s.randUint64()%1_000_000) < perMil
}

func (s *Sidecar) randUint64() uint64 { return rand.Uint64() }

// local answers from the proxy itself, as Envoy's local replies.
func (s *Sidecar) local(w http.ResponseWriter, x *exchange, code int, flag, body string) {
	x.code, x.flags = code, flag
	if body == "" {
		switch flag {
		case flagNoHealthy:
			body = "no healthy upstream"
		case flagUpstreamTimeout:
			body = "upstream request timeout"
		case flagOverflow:
			body = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
		case flagNoCluster, flagNoRoute:
			body = ""
		default:
			body = "upstream connect error or disconnect/reset before headers"
		}
	}
	w.Header().Set("content-type", "text/plain")
	w.Header().Set("server", "envoy")
	w.Header().Set(HeaderResponseFlags, flag)
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func (s *Sidecar) finish(x *exchange) {
	svcName, svcNS := "unknown", "unknown"
	if parts := strings.SplitN(x.service, ".", 3); len(parts) >= 2 {
		svcName, svcNS = parts[0], parts[1]
	}
	s.metrics.observe(record{
		reporter: x.reporter, source: x.source, dest: x.dest,
		service: orUnknown(x.service), serviceName: svcName, serviceNS: svcNS,
		code: x.code, flags: x.flags, security: x.security,
		durationMillis: float64(time.Since(x.start).Microseconds()) / 1000,
	})
}

// hop-by-hop headers are not forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// upstreamRequest is what every attempt sends: method, URL path, host and headers after the route's edits.
type upstreamRequest struct {
	method, uri, host string
	header            http.Header
	body              []byte
	stream            io.Reader // a body too large to buffer: one attempt only
}

// prepare applies the route's rewrites and header edits once per request.
func (s *Sidecar) prepare(r *http.Request, x *exchange, cr *compiledRoute) *upstreamRequest {
	out := r.Header.Clone()
	for _, h := range hopHeaders {
		out.Del(h)
	}
	if out.Get(headerRequestID) == "" {
		out.Set(headerRequestID, newRequestID())
	}
	if x.reporter == "source" {
		out[headerPeerIDKey] = s.peerID
		out[headerPeerMetadataKey] = s.peerMetadata
	} else {
		out.Del(HeaderPeerID)
		out.Del(HeaderPeerMetadata)
	}
	out.Set("x-forwarded-proto", "http")
	for _, h := range cr.headers.reqRemove {
		out.Del(h)
	}
	for _, kv := range cr.headers.reqSet {
		out.Set(kv[0], kv[1])
	}
	for _, kv := range cr.headers.reqAdd {
		out.Add(kv[0], kv[1])
	}
	ur := &upstreamRequest{method: r.Method, uri: r.URL.RequestURI(), host: r.Host, header: out}
	if path, ok := rewritePath(r.URL.EscapedPath(), cr); ok {
		ur.uri = path
		if r.URL.RawQuery != "" {
			ur.uri += "?" + r.URL.RawQuery
		}
	}
	if cr.hostRewrite != "" {
		ur.host = cr.hostRewrite
	}
	return ur
}

// rewritePath applies the route's path rewrite to the path as it came, its
// percent-encoding kept (Envoy rewrites the :path header, it does not
// decode it). prefix_rewrite replaces what the route matched
// (route_components.proto): the prefix, compared as the route compares it
// (case-insensitively under ignoreUriCase), or the whole path for an exact
// or a regex match (RegexRouteEntryImpl matches the whole path).
func rewritePath(raw string, cr *compiledRoute) (string, bool) {
	m := cr.match
	switch {
	case cr.regexRewrite != nil:
		return cr.regexRewrite.ReplaceAllString(raw, cr.regexSubst), true
	case cr.prefixRewrite == "":
		return "", false
	case m.hasPath || m.regex != nil:
		return cr.prefixRewrite, true
	case len(raw) >= len(m.prefix) && equalFold(raw[:len(m.prefix)], m.prefix, m.caseSensitive):
		return cr.prefixRewrite + raw[len(m.prefix):], true
	}
	return "", false
}

// forward sends the request upstream with the route's timeout and retry
// policy and the cluster's circuit breakers, as Envoy's router filter does,
// and streams the answer back.
func (s *Sidecar) forward(w http.ResponseWriter, r *http.Request, x *exchange, vh *vhost, cr *compiledRoute, u *upstream, shadows []shadow) {
	ctx := r.Context()
	if cr.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cr.timeout)
		defer cancel()
	}
	ur := s.prepare(r, x, cr)
	retry := cr.retry
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBuffer+1))
		if err != nil {
			x.code, x.flags = 0, flagDownstreamCancel
			return
		}
		if len(b) > maxRetryBuffer {
			// Too large to buffer: Envoy gives up retries and shadows for
			// such a request (router.cc decodeData, request_buffer_overflowed_).
			retry = nil
			shadows = nil
			ur.stream = io.MultiReader(bytes.NewReader(b), r.Body)
		} else {
			ur.body = b
		}
	}
	hashKey, hasKey := "", false
	if cr.hashHeader != "" {
		if vs := r.Header.Values(cr.hashHeader); len(vs) > 0 {
			hashKey, hasKey = strings.Join(vs, ","), true
		}
	}
	lim := u.conf.Load().limits
	if uint64(u.active.Load()) >= lim.maxRequests {
		s.metrics.pendingOverflow.WithLabelValues(u.name).Inc()
		s.local(w, x, http.StatusServiceUnavailable, flagOverflow, "")
		return
	}
	u.active.Add(1)
	defer u.active.Add(-1)

	maxAttempts := 1
	if retry != nil {
		maxAttempts += retry.numRetries
	}
	var tried []*host
	heldRetry := false
	defer func() {
		if heldRetry {
			u.retries.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		var skip func(*host) bool
		hostTries := 1
		if retry != nil && retry.previousHosts && len(tried) > 0 {
			skip = func(h *host) bool {
				for _, t := range tried {
					if t == h {
						return true
					}
				}
				return false
			}
			hostTries = retry.hostPicks()
		}
		h := u.pick(skip, hostTries, hashKey, hasKey)
		if h == nil {
			s.local(w, x, http.StatusServiceUnavailable, flagNoHealthy, "")
			return
		}
		tried = append(tried, h)
		if x.reporter == "destination" {
			x.dest = s.self
		} else {
			x.dest = peer{workload: h.workload, namespace: h.namespace, app: h.app, version: h.version, principal: "unknown"}
		}
		if attempt > 1 {
			// The transport may still read the last attempt's headers: a retry
			// gets a map of its own. The first attempt, by far the most common,
			// sends the prepared map itself.
			ur.header = ur.header.Clone()
		}
		if vh.attemptCount {
			ur.header.Set(HeaderAttemptCount, strconv.Itoa(attempt))
		}
		release, overflow := u.acquire(ctx)
		if overflow {
			s.metrics.pendingOverflow.WithLabelValues(u.name).Inc()
			s.local(w, x, http.StatusServiceUnavailable, flagOverflow, "")
			return
		}
		if release == nil { // the request's time ran out while it waited for a connection
			s.endFailed(w, r, ctx, x, "timeout", retry, attempt, maxAttempts)
			return
		}
		if attempt == 1 {
			// The shadows go out once the request has a host and a
			// connection, as Envoy's router sends them with the upstream
			// request: a request that ends UH or UO is not mirrored.
			for _, sh := range shadows {
				s.mirror(ur, sh, cr.timeout)
			}
		}
		resp, failure := s.attempt(ctx, ur, h, u, retry)
		if resp != nil {
			// The connection is busy until the answer's body is whole:
			// max_connections counts it to the stream's end.
			onStreamEnd(resp, release)
		} else {
			release()
		}
		if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 && x.reporter == "source" {
			x.dest.principal = principalOf(resp.TLS.PeerCertificates[0])
		}
		switch {
		case failure != "" && r.Context().Err() != nil:
			// The caller went away: Envoy resets the upstream request and
			// records no outlier result for it (router.cc onDestroy), so a
			// caller that gives up never gets a healthy host ejected.
		case failure != "":
			u.observe(h, 503)
		default:
			u.observe(h, resp.StatusCode)
		}
		// The max_retries slot of the previous retry is held until this
		// attempt is judged (RetryStateImpl::shouldRetry calls resetRetry).
		if heldRetry {
			u.retries.Add(-1)
			heldRetry = false
		}
		retriable := attempt < maxAttempts && retry != nil && retry.retriable(resp, failure)
		if retriable && !u.reserveRetry() {
			// max_retries reached: the retry is not sent
			// (upstream_rq_retry_overflow), and the router flags the
			// answer UO (RetryStatus::NoOverflow in router.cc).
			s.metrics.retryOverflow.WithLabelValues(u.name).Inc()
			retriable = false
			x.retryOverflow = true
		}
		if !retriable {
			if failure != "" {
				s.endFailed(w, r, ctx, x, failure, retry, attempt, maxAttempts)
				return
			}
			if retry != nil && attempt == maxAttempts && attempt > 1 && retry.retriable(resp, "") {
				x.flags = flagRetryLimit
			}
			if x.retryOverflow {
				x.flags = flagOverflow
			}
			s.copyResponse(w, resp, x, cr)
			return
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		x.retries++
		s.metrics.retries.WithLabelValues(u.name).Inc()
		heldRetry = true
		ok := sleepCtx(ctx, retry.backoff(attempt, s.randUint64))
		if !ok {
			s.endFailed(w, r, ctx, x, "timeout", retry, attempt, maxAttempts)
			return
		}
	}
}

// endFailed answers for a request whose last attempt got no response.
func (s *Sidecar) endFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, x *exchange, failure string, retry *retryPolicy, attempt, maxAttempts int) {
	if r.Context().Err() != nil {
		x.code, x.flags = 0, flagDownstreamCancel
		return
	}
	if ctx.Err() != nil {
		s.local(w, x, http.StatusGatewayTimeout, flagUpstreamTimeout, "")
		return
	}
	flag := failureFlag(failure)
	if x.retryOverflow {
		flag += "," + flagOverflow // UF, UC and UT come before UO in Envoy's flag order
	}
	if retry != nil && attempt == maxAttempts && attempt > 1 && retry.retriable(nil, failure) {
		flag += "," + flagRetryLimit
	}
	code := http.StatusServiceUnavailable
	if failure == "per-try-timeout" {
		code = http.StatusGatewayTimeout
	}
	s.local(w, x, code, flag, "")
}

// acquire takes a connection slot under max_connections, waiting as a
// pending request when none is free; it reports overflow when the pending
// queue is full (Envoy's HTTP/1.1 pool with circuit breakers). A nil release
// without overflow means ctx ended while waiting.
func (u *upstream) acquire(ctx context.Context) (release func(), overflow bool) {
	lim := u.conf.Load().limits
	if lim.maxConnections >= math.MaxUint32 {
		return func() {}, false
	}
	u.slotsMu.Lock()
	if u.slots == nil || u.slotsCap != lim.maxConnections {
		u.slots, u.slotsCap = make(chan struct{}, lim.maxConnections), lim.maxConnections
	}
	slots := u.slots
	u.slotsMu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, false
	default:
	}
	if uint64(u.pending.Load()) >= lim.maxPending {
		return nil, true
	}
	u.pending.Add(1)
	defer u.pending.Add(-1)
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, false
	case <-ctx.Done():
		return nil, false
	}
}

// reserveRetry counts a retry against max_retries.
func (u *upstream) reserveRetry() bool {
	if uint64(u.retries.Add(1)) > u.conf.Load().limits.maxRetries {
		u.retries.Add(-1)
		return false
	}
	return true
}

// shadow is a mirror policy chosen for one request.
type shadow struct {
	u        *upstream
	noSuffix bool
}

// mirror sends a copy of the request as it goes upstream (rewrites and
// header edits applied) to a shadow cluster and forgets the answer, bounded
// by the route's timeout as Envoy's shadow requests are. Envoy appends
// "-shadow" to the host unless disable_shadow_host_suffix_append is set, as
// Istio sets it.
func (s *Sidecar) mirror(ur *upstreamRequest, sh shadow, timeout time.Duration) {
	h := sh.u.pick(nil, 1, "", false)
	if h == nil {
		return
	}
	host := ur.host
	if !sh.noSuffix {
		name, port, err := net.SplitHostPort(ur.host)
		host = ur.host + "-shadow"
		if err == nil {
			host = net.JoinHostPort(name+"-shadow", port)
		}
	}
	hdr := ur.header.Clone()
	s.mirrors.Add(1)
	go func() {
		defer s.mirrors.Done()
		ctx, cancel := s.ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		defer cancel()
		t, scheme := sh.u.transportFor(h)
		req, err := http.NewRequestWithContext(ctx, ur.method, scheme+h.addr+ur.uri, bytes.NewReader(ur.body))
		if err != nil {
			return
		}
		req.Header, req.Host = hdr, host
		resp, err := t.RoundTrip(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

// attempt makes one try. failure names why it failed before a response
// ("connect-failure", "reset", "per-try-timeout", "timeout"), or is empty.
func (s *Sidecar) attempt(ctx context.Context, ur *upstreamRequest, h *host, u *upstream, retry *retryPolicy) (*http.Response, string) {
	var cancel context.CancelFunc = func() {}
	if retry != nil && retry.perTryTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, retry.perTryTimeout)
	}
	var rb io.Reader = http.NoBody
	switch {
	case ur.body != nil:
		rb = bytes.NewReader(ur.body)
	case ur.stream != nil:
		rb = ur.stream
	}
	transport, scheme := u.transportFor(h)
	req, err := http.NewRequestWithContext(ctx, ur.method, scheme+h.addr+ur.uri, rb)
	if err != nil {
		cancel()
		return nil, "reset"
	}
	req.Header = ur.header
	req.Host = ur.host
	if ur.body != nil {
		req.ContentLength = int64(len(ur.body))
	}
	// The request counts as active on its host (LEAST_REQUEST) until its
	// stream ends, as in Envoy, not when the answer's headers arrive.
	h.active.Add(1)
	resp, err := transport.RoundTrip(req)
	if err != nil {
		h.active.Add(-1)
		failure := classify(ctx, err, retry)
		s.log.Debug("upstream attempt failed", "cluster", u.name, "host", h.addr, "failure", failure, "err", err)
		cancel()
		return nil, failure
	}
	onStreamEnd(resp, func() {
		cancel()
		h.active.Add(-1)
	})
	return resp, ""
}

// onStreamEnd runs done once when resp's body is closed: the end of the
// upstream stream, where Envoy gives back what the request held.
func onStreamEnd(resp *http.Response, done func()) {
	resp.Body = &streamEnd{ReadCloser: resp.Body, done: done}
}

type streamEnd struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (c *streamEnd) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

func classify(ctx context.Context, err error, retry *retryPolicy) string {
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) && retry != nil && retry.perTryTimeout > 0 && ctx.Err() != nil:
		return "per-try-timeout"
	case ctx.Err() != nil:
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &op) && op.Op == "dial":
		return "connect-failure"
	case isTLSError(err):
		// A failed handshake is a connection failure to Envoy (UF, "TLS error").
		return "connect-failure"
	default:
		return "reset"
	}
}

func isTLSError(err error) bool {
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	var cert *tls.CertificateVerificationError
	return errors.As(err, &rec) || errors.As(err, &alert) || errors.As(err, &cert) ||
		strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:")
}

func failureFlag(f string) string {
	switch f {
	case "connect-failure":
		return flagConnectFailure
	case "per-try-timeout", "timeout":
		return flagUpstreamTimeout
	default:
		return flagUpstreamTermination
	}
}

// retriable applies Envoy's retry_on conditions (router filter docs, x-envoy-retry-on).
func (p *retryPolicy) retriable(resp *http.Response, failure string) bool {
	if failure != "" {
		// Envoy's RetryStateImpl::wouldRetryFromReset: 5xx and gateway-error
		// retry any reset; connect-failure and reset-before-request a failure
		// before the request went out; reset any reset.
		switch failure {
		case "connect-failure":
			return p.on["connect-failure"] || p.on["reset-before-request"] || p.on["5xx"] || p.on["gateway-error"] || p.on["reset"]
		case "per-try-timeout":
			// A per-try timeout is a local reset of a request already sent
			// (router.cc onPerTryTimeoutCommon calls maybeRetryReset with
			// LocalReset): wouldRetryFromReset retries it under 5xx,
			// gateway-error and reset.
			return p.on["5xx"] || p.on["gateway-error"] || p.on["reset"]
		case "timeout":
			return false
		default:
			return p.on["reset"] || p.on["5xx"] || p.on["gateway-error"]
		}
	}
	if resp == nil {
		return false
	}
	// A rate-limited answer is retried only under envoy-ratelimited, never as a 5xx.
	if resp.Header.Get("x-envoy-ratelimited") != "" {
		return p.on["envoy-ratelimited"]
	}
	c := resp.StatusCode
	switch {
	case p.on["5xx"] && c >= 500:
		return true
	case p.on["gateway-error"] && (c == 502 || c == 503 || c == 504):
		return true
	case p.on["retriable-4xx"] && c == 409:
		return true
	case p.on["retriable-status-codes"] && p.codes[c]:
		return true
	}
	if g := resp.Header.Get("grpc-status"); g != "" {
		switch g {
		case "1":
			return p.on["cancelled"]
		case "4":
			return p.on["deadline-exceeded"]
		case "8":
			return p.on["resource-exhausted"]
		case "13":
			return p.on["internal"]
		case "14":
			return p.on["unavailable"]
		}
	}
	return false
}

// backoff is Envoy's jittered exponential back-off: before retry n, a random
// time in [0, (2^n − 1) × base], capped at the max interval.
func (p *retryPolicy) backoff(n int, rnd func() uint64) time.Duration {
	limit := p.backoffCeiling(n)
	if limit <= 0 {
		return 0
	}
	return time.Duration(rnd() % uint64(limit))
}

// hostPicks is how many hosts a selection with previous_hosts may pick:
// host_selection_retry_max_attempts counts the picks after the first, as
// ZoneAwareLoadBalancerBase::chooseHost makes hostSelectionRetryCount()+1.
func (p *retryPolicy) hostPicks() int { return p.hostSelectMax + 1 }

// backoffCeiling is the bound of the n-th back-off (n from 1) as Envoy's
// JitteredExponentialBackOffStrategy computes it (backoff_strategy.cc):
// the interval starts at the base and doubles after each back-off, and
// becomes the maximum once doubling would pass it: 25, 50, 100, 200, 250 ms
// for Envoy's default 25 ms base and 10× maximum. (The router docs'
// formula, (2^N-1)×base, is not what the code does.)
func (p *retryPolicy) backoffCeiling(n int) time.Duration {
	c := p.backoffBase
	for i := 1; i < n && c < p.backoffMax; i++ {
		if c > p.backoffMax/2 {
			c = p.backoffMax
		} else {
			c *= 2
		}
	}
	return min(c, p.backoffMax)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Sidecar) copyResponse(w http.ResponseWriter, resp *http.Response, x *exchange, cr *compiledRoute) {
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for _, h := range cr.headers.respRemove {
		resp.Header.Del(h)
	}
	for _, kv := range cr.headers.respSet {
		resp.Header.Set(kv[0], kv[1])
	}
	for _, kv := range cr.headers.respAdd {
		resp.Header.Add(kv[0], kv[1])
	}
	dst := w.Header()
	for k, vs := range resp.Header {
		if k == HeaderConfigVersion && dst.Get(k) != "" {
			continue
		}
		dst[k] = vs
	}
	x.code = resp.StatusCode
	if x.flags != flagNone {
		dst.Set(HeaderResponseFlags, x.flags)
	}
	w.WriteHeader(resp.StatusCode)
	if err := streamBody(w, resp.Body); err != nil && x.flags == flagNone {
		x.flags = flagUpstreamTermination
	}
	for k, vs := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vs
	}
}

var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// streamBody copies an upstream body downstream as it arrives, as Envoy's
// router streams data: a chunk that is not the body's last is flushed at
// once, so a caller gets a server's first chunk without waiting for the
// rest. The last chunk goes out when the handler returns.
func streamBody(w http.ResponseWriter, body io.Reader) error {
	bp := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if err == nil {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func peerFromHeaders(h http.Header) peer {
	md := h.Get(HeaderPeerMetadata)
	if md == "" {
		return unknownPeer
	}
	p := strings.Split(md, ";")
	if len(p) < 5 {
		return unknownPeer
	}
	return peer{workload: p[0], namespace: p[1], app: p[2], version: p[3], principal: p[4]}
}

// newRequestID makes a random UUID (version 4), as Envoy's x-request-id.
func newRequestID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i], b[8+i] = byte(a>>(8*i)), byte(c>>(8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
