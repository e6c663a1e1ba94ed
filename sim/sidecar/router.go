package sidecar

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
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
	flagNone             = "-"
	flagNoRoute          = "NR"
	flagNoCluster        = "NC"
	flagNoHealthy        = "UH"
	flagConnectFailure   = "UF"
	flagUpstreamTimeout  = "UT"
	flagRetryLimit       = "URX"
	flagUpstreamReset    = "UR"
	flagDownstreamCancel = "DC"
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
	rt := st.outboundRoutes(port)
	s.route(w, r, st, rt, host, "source")
}

// serveRouter is the gateway: its listener's RDS routes the request.
func (s *Sidecar) serveRouter(w http.ResponseWriter, r *http.Request, listenerName string) {
	st := s.state.Load()
	var rt *routeTable
	if l := st.listeners[listenerName]; l != nil && len(l.chains) > 0 {
		rt = st.routes[l.chains[0].rds]
	}
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, rt, host, "source")
}

// serveInbound hands a request to the app through the inline route of the
// virtualInbound chain for this port.
func (s *Sidecar) serveInbound(w http.ResponseWriter, r *http.Request, port int) {
	st := s.state.Load()
	var rt *routeTable
	if l := st.listeners[xdsgen.VirtualInboundListener]; l != nil {
		for _, c := range l.chains {
			if c.destPort == port {
				rt = c.inline
			}
		}
	}
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, rt, host, "destination")
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
}

func (s *Sidecar) route(w http.ResponseWriter, r *http.Request, st *state, rt *routeTable, host, reporter string) {
	x := &exchange{start: time.Now(), reporter: reporter, dest: unknownPeer, flags: flagNone}
	if reporter == "destination" {
		x.source = peerFromHeaders(r.Header)
		x.dest = s.self
		x.service = s.cfg.App + "." + s.cfg.Namespace + ".svc.cluster.local"
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
	u := st.clusters[clusterName]
	if u == nil || !u.warm.Load() {
		s.local(w, x, http.StatusServiceUnavailable, flagNoCluster, "")
		return
	}
	s.forward(w, r, x, vh, cr, u)
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
		code: x.code, flags: x.flags, security: "none",
		durationMillis: float64(time.Since(x.start).Microseconds()) / 1000,
	})
}

// hop-by-hop headers are not forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forward sends the request upstream with the route's timeout and retry
// policy, as Envoy's router filter does, and streams the answer back.
func (s *Sidecar) forward(w http.ResponseWriter, r *http.Request, x *exchange, vh *vhost, cr *compiledRoute, u *upstream) {
	ctx := r.Context()
	if cr.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cr.timeout)
		defer cancel()
	}
	var body []byte
	retry := cr.retry
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBuffer+1))
		if err != nil {
			s.local(w, x, http.StatusBadRequest, flagDownstreamCancel, "bad request body")
			return
		}
		if len(b) > maxRetryBuffer {
			// Too large to buffer: Envoy gives up retries for such a request.
			retry = nil
			body = nil
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
		} else {
			body = b
		}
	}
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

	maxAttempts := 1
	if retry != nil {
		maxAttempts += retry.numRetries
	}
	var tried []*host
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
			hostTries = max(retry.hostSelectMax, 1)
		}
		h := u.pick(skip, hostTries)
		if h == nil {
			s.local(w, x, http.StatusServiceUnavailable, flagNoHealthy, "")
			return
		}
		tried = append(tried, h)
		x.dest = peer{workload: h.workload, namespace: h.namespace, app: h.app, version: h.version, principal: "unknown"}
		if x.reporter == "destination" {
			x.dest = s.self
		}
		if vh.attemptCount {
			out.Set(HeaderAttemptCount, strconv.Itoa(attempt))
		}
		resp, failure := s.attempt(ctx, r, out, body, h, u, retry)
		retriable := attempt < maxAttempts && retry != nil && retry.retriable(resp, failure)
		if !retriable {
			if failure != "" {
				if ctx.Err() != nil && r.Context().Err() == nil {
					s.local(w, x, http.StatusGatewayTimeout, flagUpstreamTimeout, "")
					return
				}
				if r.Context().Err() != nil {
					x.code, x.flags = 0, flagDownstreamCancel
					return
				}
				flag := failureFlag(failure)
				if retry != nil && attempt == maxAttempts && attempt > 1 && retry.retriable(nil, failure) {
					flag += "," + flagRetryLimit
				}
				code := http.StatusServiceUnavailable
				if failure == "per-try-timeout" {
					code = http.StatusGatewayTimeout
				}
				s.local(w, x, code, flag, "")
				return
			}
			if retry != nil && attempt == maxAttempts && attempt > 1 && retry.retriable(resp, "") {
				x.flags = flagRetryLimit
			}
			s.copyResponse(w, resp, x)
			return
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		x.retries++
		s.metrics.retries.WithLabelValues(u.name).Inc()
		if !sleepCtx(ctx, retry.backoff(attempt, s.randUint64)) {
			s.local(w, x, http.StatusGatewayTimeout, flagUpstreamTimeout, "")
			return
		}
	}
}

// attempt makes one try. failure names why it failed before a response
// ("connect-failure", "reset", "per-try-timeout", "timeout"), or is empty.
func (s *Sidecar) attempt(ctx context.Context, r *http.Request, hdr http.Header, body []byte, h *host, u *upstream, retry *retryPolicy) (*http.Response, string) {
	if retry != nil && retry.perTryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, retry.perTryTimeout)
		// The body is read by the caller before the next try; cancel with it.
		defer func() {
			if ctx.Err() != nil {
				cancel()
			}
		}()
		_ = cancel
	}
	var rb io.Reader
	switch {
	case body != nil:
		rb = bytes.NewReader(body)
	case r.Body != nil && r.Body != http.NoBody:
		rb = r.Body
	}
	u2 := *r.URL
	u2.Scheme, u2.Host, u2.User = "http", h.addr, nil
	req, err := http.NewRequestWithContext(ctx, r.Method, "", rb)
	if err != nil {
		return nil, "reset"
	}
	req.URL = &u2
	req.Header = hdr
	if body != nil {
		// A retry sends the same headers again: the transport must not share a map it may still read.
		req.Header = hdr.Clone()
	}
	req.Host = r.Host
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	h.active.Add(1)
	resp, err := u.transport.RoundTrip(req)
	h.active.Add(-1)
	if err != nil {
		return nil, classify(ctx, err, retry)
	}
	return resp, ""
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
	default:
		return "reset"
	}
}

func failureFlag(f string) string {
	switch f {
	case "connect-failure":
		return flagConnectFailure
	case "per-try-timeout", "timeout":
		return flagUpstreamTimeout
	default:
		return flagUpstreamReset
	}
}

// retriable applies Envoy's retry_on conditions (router filter docs, x-envoy-retry-on).
func (p *retryPolicy) retriable(resp *http.Response, failure string) bool {
	if failure != "" {
		switch failure {
		case "connect-failure":
			return p.on["connect-failure"] || p.on["5xx"] || p.on["gateway-error"] || p.on["reset"]
		case "per-try-timeout":
			// Envoy retries a per-try timeout under 5xx and gateway-error.
			return p.on["5xx"] || p.on["gateway-error"]
		case "timeout":
			return false
		default:
			return p.on["reset"] || p.on["5xx"]
		}
	}
	if resp == nil {
		return false
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
	limit := p.backoffBase * time.Duration((uint64(1)<<min(n, 20))-1)
	if limit > p.backoffMax || limit <= 0 {
		limit = p.backoffMax
	}
	if limit <= 0 {
		return 0
	}
	return time.Duration(rnd() % uint64(limit))
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

func (s *Sidecar) copyResponse(w http.ResponseWriter, resp *http.Response, x *exchange) {
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
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
	if _, err := io.Copy(w, resp.Body); err != nil && x.flags == flagNone {
		x.flags = flagUpstreamReset
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
