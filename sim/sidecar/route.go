package sidecar

import (
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/meshbench/meshbench/sim/istionames"
)

// The route stage: the exchange a request is recorded as, the route it
// takes, its fault injection, and the request as it will go upstream.

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
	// streamIdle is the HCM's stream_idle_timeout.
	streamIdle time.Duration
	// stream holds the timers that may end the stream while forward runs.
	stream stream
	// grpc: a gRPC request (grpc.go); grpcStatus its answer's grpc-status.
	grpc       bool
	grpcStatus string
	// upgrade is the HTTP/1.1 upgrade (websocket) the route allowed.
	upgrade string
	// upstream is the request as it goes upstream (prepare), kept here
	// to save it an allocation of its own.
	upstream upstreamRequest
	// log is set when the chain has an access log (accesslog.go).
	log *exchangeLog
	// trace is set when the chain traces (tracing.go), to traceBuf,
	// which saves it an allocation of its own.
	trace    *traceState
	traceBuf traceState
}

// route routes a request an HCM chain took (nil: no listener on its port).
func (s *Sidecar) route(w http.ResponseWriter, r *http.Request, st *state, rt *routeTable, chain *chainConf, host, reporter string) {
	idle := defaultStreamIdle
	var hcmUpgrades map[string]bool
	if chain != nil {
		idle, hcmUpgrades = chain.streamIdle, chain.upgrades
	}
	x := &exchange{start: time.Now(), reporter: reporter, dest: unknownPeer, flags: flagNone, security: "unknown", streamIdle: idle, grpc: isGRPCRequest(r)}
	if reporter == "destination" {
		x.source = peerFromHeaders(r.Header)
		x.dest = s.self
		x.service = s.inboundService
		x.security = securityOf(r)
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			x.source.principal = peerPrincipal(r)
		}
	} else {
		x.source = s.self
	}
	if chain != nil && len(chain.accessLogs) > 0 {
		w = s.startLog(w, r, x, chain.accessLogs)
	}
	if chain != nil && chain.tracing != nil {
		w = s.startTrace(w, r, x, chain.tracing)
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
	if up := upgradeOf(r); up != "" {
		if !upgradeAllowed(hcmUpgrades, cr.upgrades, up) {
			s.refuseUpgrade(w, x)
			return
		}
		x.upgrade = up
	}
	if rt.version != "" {
		w.Header()[headerConfigVersionKey] = rt.versionValue
	}
	clusterName := cr.pickCluster(s.randUint64)
	if x.log != nil {
		x.log.cluster, x.log.route = clusterName, cr.name
	}
	if x.trace != nil {
		x.trace.cluster = clusterName
		if cr.decorator != "" {
			x.trace.name = cr.decorator
		}
	}
	if _, _, _, h, ok := istionames.ParseClusterName(clusterName); ok && h != "" {
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
		if x.upgrade != "" {
			break // an upgraded stream is not shadowed: a shadow's 101 would hold a connection nobody reads
		}
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
	s.localReply(w, x, code, flag, body, httpToGRPCStatus(code))
}

// localGRPC is a local reply with no response flag whose gRPC status is
// not the one its HTTP code maps to (sendLocalReply's grpc_status).
func (s *Sidecar) localGRPC(w http.ResponseWriter, x *exchange, code, grpcStatus int, body string) {
	s.localReply(w, x, code, flagNone, body, grpcStatus)
}

func (s *Sidecar) localReply(w http.ResponseWriter, x *exchange, code int, flag, body string, grpcStatus int) {
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
	w.Header().Set("server", "envoy")
	w.Header().Set(HeaderResponseFlags, flag)
	if x.grpc {
		grpcLocalReply(w, x, grpcStatus, body)
		return
	}
	w.Header().Set("content-type", "text/plain")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func (s *Sidecar) finish(x *exchange) {
	svcName, svcNS := serviceNameNamespace(x.service)
	s.metrics.observe(record{
		reporter: x.reporter, source: x.source, dest: x.dest,
		service: orUnknown(x.service), serviceName: svcName, serviceNS: svcNS,
		code: x.code, flags: x.flags, security: x.security, grpc: x.grpc, grpcStatus: x.grpcStatus,
		durationMillis: float64(time.Since(x.start).Microseconds()) / 1000,
	})
	if x.log != nil {
		s.writeLog(x)
	}
	if x.trace != nil {
		s.finishTrace(x, time.Now())
	}
}

// hop-by-hop headers are not forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// upstreamRequest is what every attempt sends: method, URL path, host and headers after the route's edits.
type upstreamRequest struct {
	method, uri, host string
	header            http.Header
	body              []byte
	getBody           func() (io.ReadCloser, error) // body anew, for the transport
	stream            io.Reader                     // a body too large to buffer: one attempt only
	// downstreamH2: the request came over HTTP/2 (use_downstream_protocol).
	downstreamH2 bool
	// upgrade: an allowed HTTP/1.1 upgrade (upgrade.go).
	upgrade bool
}

// prepare applies the route's rewrites and header edits once per request,
// into x.upstream.
func (s *Sidecar) prepare(r *http.Request, x *exchange, cr *compiledRoute) *upstreamRequest {
	extra := preparedHeaders
	if x.trace != nil {
		extra += tracedHeaders
	}
	out := cloneHeader(r.Header, extra)
	te := r.Header.Values("Te")
	for _, h := range hopHeaders {
		out.Del(h)
	}
	// TE is hop by hop, but its "trailers" passes: gRPC needs it, and
	// Envoy's HCM keeps that value alone (ConnectionManagerUtility::
	// mutateRequestHeaders, sanitizeTEHeader).
	if teTrailers(te) {
		out.Set("Te", "trailers")
	}
	if x.upgrade != "" {
		// An allowed upgrade goes upstream as asked (Envoy's HCM keeps
		// Upgrade and Connection: upgrade on upgrade requests,
		// ConnectionManagerUtility::mutateRequestHeaders).
		out.Set("Connection", "Upgrade")
		out.Set("Upgrade", r.Header.Get("Upgrade"))
	}
	if vs := out[headerRequestIDKey]; len(vs) == 0 || vs[0] == "" {
		out[headerRequestIDKey] = []string{newRequestID()}
	}
	if x.trace != nil {
		injectTrace(out, x.trace, x.trace.ctx)
	}
	if x.reporter == "source" {
		out[headerPeerIDKey] = s.peerID
		out[headerPeerMetadataKey] = s.peerMetadata
	} else {
		delete(out, headerPeerIDKey)
		delete(out, headerPeerMetadataKey)
	}
	out[headerForwardedProto] = forwardedProtoHTTP
	for _, h := range cr.headers.reqRemove {
		out.Del(h)
	}
	for _, kv := range cr.headers.reqSet {
		out.Set(kv[0], kv[1])
	}
	for _, kv := range cr.headers.reqAdd {
		out.Add(kv[0], kv[1])
	}
	ur := &x.upstream
	*ur = upstreamRequest{method: r.Method, uri: r.URL.RequestURI(), host: r.Host, header: out, downstreamH2: r.ProtoMajor == 2, upgrade: x.upgrade != ""}
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

// preparedHeaders is how many headers prepare and an attempt may add to a
// request's own: x-request-id, the two peer metadata headers,
// x-forwarded-proto, x-envoy-attempt-count and grpc-timeout.
const preparedHeaders = 6

// tracedHeaders are the headers a traced request may add: the four B3
// ones and traceparent.
const tracedHeaders = 5

// cloneHeader is h.Clone with room for extra more keys, so that the
// headers the proxy adds do not grow the map. Like Clone, it copies every
// value into one backing array.
func cloneHeader(h http.Header, extra int) http.Header {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	values := make([]string, n)
	out := make(http.Header, len(h)+extra)
	for k, vs := range h {
		if vs == nil {
			out[k] = nil // Clone keeps a nil value nil
			continue
		}
		c := copy(values, vs)
		out[k] = values[:c:c]
		values = values[c:]
	}
	return out
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

// serviceNameNamespace are destination_service_name and _namespace: the
// first two labels of the service's FQDN, or unknown.
func serviceNameNamespace(fqdn string) (name, namespace string) {
	name, rest, ok := strings.Cut(fqdn, ".")
	if !ok {
		return "unknown", "unknown"
	}
	namespace, _, _ = strings.Cut(rest, ".")
	return name, namespace
}

// peerFromHeaders reads the caller's peer metadata, its fields split
// without allocating (the fifth runs to the end, as the caller may add more).
func peerFromHeaders(h http.Header) peer {
	var md string
	if vs := h[headerPeerMetadataKey]; len(vs) > 0 {
		md = vs[0]
	}
	if md == "" {
		return unknownPeer
	}
	var p peer
	var ok bool
	for _, f := range []*string{&p.workload, &p.namespace, &p.app, &p.version} {
		if *f, md, ok = strings.Cut(md, ";"); !ok {
			return unknownPeer
		}
	}
	p.principal, _, _ = strings.Cut(md, ";")
	return p
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

// teTrailers reports whether a TE header lists "trailers".
func teTrailers(vs []string) bool {
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			if t, _, _ = strings.Cut(t, ";"); strings.EqualFold(strings.TrimSpace(t), "trailers") {
				return true
			}
		}
	}
	return false
}
