package sidecar

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshbench/meshbench/sim/meshmetrics"
)

// Istio's standard metric labels (istio.io docs: reference/config/metrics).
var istioLabels = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_app", "source_version", "source_principal",
	"destination_workload", "destination_workload_namespace", "destination_app", "destination_version", "destination_principal",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
}

// durationBuckets are the buckets of istio_request_duration_milliseconds in
// Istio's stats extension (proxy: extensions/stats, default histogram buckets).
var durationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// metrics are one sidecar's Istio-standard metrics, in a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	// Envoy cluster stats, as Envoy's Prometheus endpoint names them
	// (cluster.<name>.outlier_detection.ejections_active → envoy_cluster_outlier_detection_ejections_active{cluster_name}).
	ejectionsActive   *prometheus.GaugeVec
	ejectionsEnforced *prometheus.CounterVec
	ejectionsOverflow *prometheus.CounterVec
	pendingOverflow   *prometheus.CounterVec
	retryOverflow     *prometheus.CounterVec
	faultsDelayed     *prometheus.CounterVec
	faultsAborted     *prometheus.CounterVec
	// downstreamH1, downstreamH2 are an HCM's http.<stat_prefix>.downstream_rq_http1_total
	// and downstream_rq_http2_total: requests by the protocol they came in.
	downstreamH1, downstreamH2 *prometheus.CounterVec
	// downstreamBy caches the counter of each downstreamKey, so that a
	// request does not resolve its label value.
	downstreamBy sync.Map
	rotations    prometheus.Counter
	tcp          *tcpMetrics
	// series caches the children of a label set: resolving 18 labels on every
	// request would cost more than the rest of the metrics work.
	series sync.Map // seriesKey → *series
}

type seriesKey struct {
	reporter          string
	source, dest      peer
	service, name, ns string
	code              int
	flags, security   string
	grpc              bool
	grpcStatus        string
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: meshmetrics.RequestsTotal, Help: "Requests handled by this proxy, as Istio's standard metric.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: meshmetrics.RequestDuration, Help: "Request duration in milliseconds, as Istio's standard metric.",
			Buckets: durationBuckets,
		}, istioLabels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: meshmetrics.UpstreamRetries, Help: "Retries sent upstream, as Envoy's cluster.<name>.upstream_rq_retry.",
		}, []string{"cluster_name"}),
	}
	cl := []string{"cluster_name"}
	m.ejectionsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: meshmetrics.EjectionsActive, Help: "Hosts ejected now."}, cl)
	m.ejectionsEnforced = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.EjectionsEnforced, Help: "Ejections enforced, by kind."}, []string{"cluster_name", "kind"})
	m.ejectionsOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.EjectionsOverflow, Help: "Ejections refused by max_ejection_percent."}, cl)
	m.pendingOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.PendingOverflow, Help: "Requests refused by the circuit breakers (flag UO)."}, cl)
	m.retryOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.UpstreamRetryOverflow, Help: "Retries not sent because of max_retries."}, cl)
	m.faultsDelayed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.FaultDelaysInjected, Help: "Requests delayed by the fault filter."}, cl)
	m.faultsAborted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.FaultAbortsInjected, Help: "Requests aborted by the fault filter."}, cl)
	hl := []string{"envoy_http_conn_manager_prefix"}
	m.downstreamH1 = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.DownstreamRequestsHTTP1, Help: "HTTP/1.1 requests an HTTP connection manager took."}, hl)
	m.downstreamH2 = prometheus.NewCounterVec(prometheus.CounterOpts{Name: meshmetrics.DownstreamRequestsHTTP2, Help: "HTTP/2 requests an HTTP connection manager took."}, hl)
	m.rotations = prometheus.NewCounter(prometheus.CounterOpts{Name: meshmetrics.CertificateRotations, Help: "Times the workload certificate changed after the first."})
	m.reg.MustRegister(m.rotations)
	m.tcp = newTCPMetrics(m.reg)
	m.reg.MustRegister(m.requests, m.duration, m.retries, m.ejectionsActive, m.ejectionsEnforced, m.ejectionsOverflow,
		m.pendingOverflow, m.retryOverflow, m.faultsDelayed, m.faultsAborted, m.downstreamH1, m.downstreamH2)
	return m
}

// peer is one side of a request as the metrics label it.
type peer struct {
	workload, namespace, app, version, principal string
}

var unknownPeer = peer{workload: "unknown", namespace: "unknown", app: "unknown", version: "unknown", principal: "unknown"}

// record is one finished request.
type record struct {
	reporter     string
	source, dest peer
	service      string // destination_service FQDN
	serviceName  string
	serviceNS    string
	code         int
	flags        string
	security     string
	// grpc: a gRPC request; grpcStatus is its answer's grpc-status.
	grpc           bool
	grpcStatus     string
	durationMillis float64
}

func (m *metrics) observe(r record) {
	k := seriesKey{r.reporter, r.source, r.dest, r.service, r.serviceName, r.serviceNS, r.code, r.flags, r.security, r.grpc, r.grpcStatus}
	if v, ok := m.series.Load(k); ok {
		s := v.(*series)
		s.requests.Inc()
		s.duration.Observe(r.durationMillis)
		return
	}
	l := prometheus.Labels{
		"reporter":                       r.reporter,
		"source_workload":                r.source.workload,
		"source_workload_namespace":      r.source.namespace,
		"source_app":                     r.source.app,
		"source_version":                 r.source.version,
		"source_principal":               r.source.principal,
		"destination_workload":           r.dest.workload,
		"destination_workload_namespace": r.dest.namespace,
		"destination_app":                r.dest.app,
		"destination_version":            r.dest.version,
		"destination_principal":          r.dest.principal,
		"destination_service":            r.service,
		"destination_service_name":       r.serviceName,
		"destination_service_namespace":  r.serviceNS,
		"request_protocol":               requestProtocol(r.grpc),
		"response_code":                  itoa(r.code),
		"grpc_response_status":           r.grpcStatus,
		"response_flags":                 r.flags,
		"connection_security_policy":     r.security,
	}
	s := &series{requests: m.requests.With(l), duration: m.duration.With(l)}
	m.series.Store(k, s)
	s.requests.Inc()
	s.duration.Observe(r.durationMillis)
}

func itoa(n int) string {
	if n >= 100 && n < 600 {
		return statusText[n-100]
	}
	return "0"
}

var statusText = func() [500]string {
	var t [500]string
	for i := range t {
		n := i + 100
		t[i] = string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
	}
	return t
}()

// downstreamKey names one of an HCM's downstream_rq_http1_total and
// _http2_total counters.
type downstreamKey struct {
	statPrefix string
	h2         bool
}

// downstream counts a request an HTTP connection manager took, by its protocol.
func (m *metrics) downstream(c *chainConf, r *http.Request) {
	if c == nil {
		return
	}
	k := downstreamKey{statPrefix: c.statPrefix, h2: r.ProtoMajor == 2}
	v, ok := m.downstreamBy.Load(k)
	if !ok {
		vec := m.downstreamH1
		if k.h2 {
			vec = m.downstreamH2
		}
		v, _ = m.downstreamBy.LoadOrStore(k, vec.WithLabelValues(c.statPrefix))
	}
	v.(prometheus.Counter).Inc()
}

// requestProtocol is Istio's request_protocol: grpc for a gRPC request,
// http otherwise. grpc_response_status is the answer's grpc-status, empty
// for other requests (Istio's standard metrics, istio.io
// reference/config/metrics; istio/proxy's stats plugin gRPC test expects
// grpc_response_status "7" for PERMISSION_DENIED).
func requestProtocol(grpc bool) string {
	if grpc {
		return "grpc"
	}
	return "http"
}

// tcpLabels are the labels of Istio's TCP metrics: the standard labels
// without request_protocol's HTTP meaning (it is "tcp"), response_code and
// grpc_response_status (istio.io reference/config/metrics: "TCP Byte
// Sent/Received, Connections Opened/Closed" carry the common labels,
// response_flags and connection_security_policy).
var tcpLabels = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_app", "source_version", "source_principal",
	"destination_workload", "destination_workload_namespace", "destination_app", "destination_version", "destination_principal",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_flags", "connection_security_policy",
}

// tcpMetrics are Istio's four TCP metrics (istio/proxy
// source/extensions/filters/http/istio_stats: istio_tcp_connections_opened_total,
// _closed_total, istio_tcp_sent_bytes_total, _received_bytes_total).
type tcpMetrics struct {
	opened, closed, sent, received *prometheus.CounterVec
}

func newTCPMetrics(reg *prometheus.Registry) *tcpMetrics {
	c := func(name, help string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, tcpLabels)
		reg.MustRegister(v)
		return v
	}
	return &tcpMetrics{
		opened:   c(meshmetrics.TCPConnectionsOpened, "TCP connections opened, as Istio's standard metric."),
		closed:   c(meshmetrics.TCPConnectionsClosed, "TCP connections closed, as Istio's standard metric."),
		sent:     c(meshmetrics.TCPSentBytes, "Bytes sent to the downstream of a TCP connection (the response), as Istio's standard metric."),
		received: c(meshmetrics.TCPReceivedBytes, "Bytes received from the downstream of a TCP connection (the request), as Istio's standard metric."),
	}
}

// tcpConn is one proxied TCP connection as the metrics label it.
type tcpConn struct {
	reporter     string
	source, dest peer
	service      string // destination_service FQDN
	flags        string
	security     string
}

func (c *tcpConn) labels() prometheus.Labels {
	svcName, svcNS := serviceNameNamespace(c.service)
	return prometheus.Labels{
		"reporter":                       c.reporter,
		"source_workload":                c.source.workload,
		"source_workload_namespace":      c.source.namespace,
		"source_app":                     c.source.app,
		"source_version":                 c.source.version,
		"source_principal":               c.source.principal,
		"destination_workload":           c.dest.workload,
		"destination_workload_namespace": c.dest.namespace,
		"destination_app":                c.dest.app,
		"destination_version":            c.dest.version,
		"destination_principal":          c.dest.principal,
		"destination_service":            orUnknown(c.service),
		"destination_service_name":       svcName,
		"destination_service_namespace":  svcNS,
		"request_protocol":               "tcp",
		"response_flags":                 c.flags,
		"connection_security_policy":     c.security,
	}
}

// tcpOpened counts a connection tcp_proxy took, once its upstream is
// connected (the labels name the destination then), or at its end when it
// got none.
func (m *metrics) tcpOpened(c *tcpConn) { m.tcp.opened.With(c.labels()).Inc() }

// tcpClosed counts a connection's end and the bytes it carried: sent to
// the downstream (the response) and received from it (the request), with
// the response flags of its end (UF: no upstream connection).
func (m *metrics) tcpClosed(c *tcpConn, sent, received int64) {
	l := c.labels()
	m.tcp.closed.With(l).Inc()
	m.tcp.sent.With(l).Add(float64(sent))
	m.tcp.received.With(l).Add(float64(received))
}
