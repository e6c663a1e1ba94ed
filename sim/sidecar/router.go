package sidecar

import (
	"net/http"
	"strconv"
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

// Canonical forms of the header names the request path reads and writes:
// indexing an http.Header with them directly skips the canonicalisation
// (an allocation for a lower-case name) that Get, Set and Del do.
var (
	headerPeerIDKey        = http.CanonicalHeaderKey(HeaderPeerID)
	headerPeerMetadataKey  = http.CanonicalHeaderKey(HeaderPeerMetadata)
	headerConfigVersionKey = http.CanonicalHeaderKey(HeaderConfigVersion)
	headerAttemptCountKey  = http.CanonicalHeaderKey(HeaderAttemptCount)
	headerRequestIDKey     = http.CanonicalHeaderKey(headerRequestID)
	headerXFCCKey          = http.CanonicalHeaderKey(headerXFCC)
	headerForwardedProto   = http.CanonicalHeaderKey("x-forwarded-proto")
	headerGRPCStatus       = http.CanonicalHeaderKey("grpc-status")
	headerGRPCTimeout      = http.CanonicalHeaderKey("grpc-timeout")
	headerRateLimited      = http.CanonicalHeaderKey("x-envoy-ratelimited")
)

// Header values the request path sets on every request, made once. They
// are shared between requests: nothing writes into a header value slice in
// place (Add appends, which copies a full slice).
var (
	forwardedProtoHTTP = []string{"http"}
	// attemptCounts[n] is the x-envoy-attempt-count value of attempt n.
	attemptCounts = func() [][]string {
		out := make([][]string, 17)
		for n := range out {
			out[n] = []string{strconv.Itoa(n)}
		}
		return out
	}()
)

// headerValue is h.Get(key) for a key already canonical.
func headerValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// attemptCountValue is the x-envoy-attempt-count header value of attempt n.
func attemptCountValue(n int) []string {
	if n < len(attemptCounts) {
		return attemptCounts[n]
	}
	return []string{strconv.Itoa(n)}
}

// Response flags, as Envoy's access log prints them.
const (
	flagNone            = "-"
	flagNoRoute         = "NR"
	flagNoCluster       = "NC"
	flagNoHealthy       = "UH"
	flagConnectFailure  = "UF"
	flagUpstreamTimeout = "UT"
	flagStreamIdle      = "SI" // stream_idle_timeout (StreamIdleTimeout)
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
