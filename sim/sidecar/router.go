package sidecar

import (
	"net/http"
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
