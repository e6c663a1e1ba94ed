package meshmetrics

// Istio's standard metrics, as Istio's proxy exports them (istio.io docs:
// reference/config/metrics; istio/proxy source/extensions/filters/http/istio_stats).
const (
	RequestsTotal        = "istio_requests_total"
	RequestDuration      = "istio_request_duration_milliseconds"
	TCPConnectionsOpened = "istio_tcp_connections_opened_total"
	TCPConnectionsClosed = "istio_tcp_connections_closed_total"
	TCPSentBytes         = "istio_tcp_sent_bytes_total"
	TCPReceivedBytes     = "istio_tcp_received_bytes_total"
)

// Envoy's stats as its Prometheus endpoint names them under Istio's tag
// extraction: cluster.<name>.upstream_rq_retry becomes
// envoy_cluster_upstream_rq_retry{cluster_name="<name>"} (Envoy docs:
// configuration/upstream/cluster_manager/cluster_stats,
// configuration/http/http_filters/fault_filter#statistics,
// configuration/http/http_conn_man/stats).
const (
	UpstreamRetries         = "envoy_cluster_upstream_rq_retry"
	UpstreamRetryOverflow   = "envoy_cluster_upstream_rq_retry_overflow"
	PendingOverflow         = "envoy_cluster_upstream_rq_pending_overflow"
	EjectionsActive         = "envoy_cluster_outlier_detection_ejections_active"
	EjectionsEnforced       = "envoy_cluster_outlier_detection_ejections_enforced_total"
	EjectionsOverflow       = "envoy_cluster_outlier_detection_ejections_overflow"
	FaultDelaysInjected     = "envoy_http_fault_delays_injected"
	FaultAbortsInjected     = "envoy_http_fault_aborts_injected"
	DownstreamRequestsHTTP1 = "envoy_http_downstream_rq_http1_total"
	DownstreamRequestsHTTP2 = "envoy_http_downstream_rq_http2_total"
)

// CertificateRotations counts the times a proxy's workload certificate
// changed after the first; it is the sidecar's own, Istio has none.
const CertificateRotations = "meshbench_sds_certificate_rotations_total"
