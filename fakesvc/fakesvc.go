// Package fakesvc implements the sample services of the mesh: small HTTP
// applications (order, payment, ...) that sleep a configurable service time,
// fail on demand, call the services they depend on through their sidecar and
// answer with a JSON Reply describing who answered and what their callees
// answered.
//
// Topology is data: any instance can call any list of services, so the
// simulator builds order → payment, or any other graph, from a scenario.
package fakesvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// Defaults applied by New and the setters.
const (
	// DefaultErrorStatus is the status an instance answers injected errors with
	// when Config.ErrorStatus is 0.
	DefaultErrorStatus = http.StatusServiceUnavailable
	// DefaultNamespace is used when Config.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultCallPort is the service port used when Call.Port is 0.
	DefaultCallPort = 80
)

// What an instance does when a callee fails (Config.OnCalleeError).
const (
	OnCalleeErrorFail    = "fail"
	OnCalleeErrorDegrade = "degrade"
)

// Response header names every answer carries.
const (
	HeaderService = "x-fakesvc-service"
	HeaderVersion = "x-fakesvc-version"
	HeaderPod     = "x-fakesvc-pod"
)

const (
	// callTimeout bounds one outbound call; it is applied to the request
	// context (the client itself has no Timeout).
	callTimeout = 30 * time.Second
	// maxBody bounds how much of a downstream body is decoded; the rest is
	// drained and discarded so the connection can be reused.
	maxBody = 4 << 20
	// maxInboundDrain bounds how much of an inbound request body is drained.
	maxInboundDrain = 1 << 20
)

// Call is one downstream call an instance makes on every request.
type Call struct {
	// Service is the name of the called service (e.g. "payment").
	Service string `json:"service" yaml:"service"`
	// Port is the service port; 0 means 80.
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Path is the request path; "" means "/".
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Protocol "grpc" calls the service's gRPC echo service (grpc_call.go)
	// instead of sending an HTTP request, "tcp" its TCP echo (tcp.go); "" is HTTP.
	Protocol string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// Addr is the service's address as cluster DNS answers its name (its
	// VIP): a TCP call through a sidecar names it, as an app connects to it.
	Addr string `json:"addr,omitempty" yaml:"addr,omitempty"`
}

// String formats the call as [grpc://]service:port/path or
// tcp://service:port[@addr], the syntax ParseCalls reads.
func (c Call) String() string {
	c = c.normalized()
	switch c.Protocol {
	case CallGRPC:
		return "grpc://" + c.Service + ":" + strconv.Itoa(c.Port) + c.Path
	case CallTCP:
		s := "tcp://" + c.Service + ":" + strconv.Itoa(c.Port)
		if c.Addr != "" {
			s += "@" + c.Addr
		}
		return s
	}
	return c.Service + ":" + strconv.Itoa(c.Port) + c.Path
}

func (c Call) normalized() Call {
	if c.Port == 0 {
		c.Port = DefaultCallPort
	}
	if c.Path == "" {
		c.Path = "/"
	} else if !strings.HasPrefix(c.Path, "/") {
		c.Path = "/" + c.Path
	}
	return c
}

// ParseCalls reads a comma-separated list of calls written
// [grpc://]service[:port][/path] or tcp://service[:port][@addr], e.g.
// "payment:80/pay,grpc://echo:80,tcp://db:5432@10.96.0.3".
// Empty items are skipped; an empty string yields no calls.
func ParseCalls(s string) ([]Call, error) {
	var calls []Call
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		proto, addr := "", ""
		if rest, ok := strings.CutPrefix(item, "grpc://"); ok {
			proto, item = CallGRPC, rest
		} else if rest, ok := strings.CutPrefix(item, "tcp://"); ok {
			proto, item = CallTCP, rest
			if i := strings.IndexByte(item, '@'); i >= 0 {
				item, addr = item[:i], item[i+1:]
				if net.ParseIP(addr) == nil {
					return nil, fmt.Errorf("call %q: address %q is not an IP address", rest, addr)
				}
			}
		}
		hostport, path := item, ""
		if i := strings.IndexByte(item, '/'); i >= 0 {
			hostport, path = item[:i], item[i:]
		}
		c := Call{Service: hostport, Path: path, Protocol: proto, Addr: addr}
		if name, port, ok := strings.Cut(hostport, ":"); ok {
			p, err := strconv.Atoi(port)
			if err != nil || p <= 0 || p > 65535 {
				return nil, fmt.Errorf("call %q: port %q must be a number in 1..65535", item, port)
			}
			c.Service, c.Port = name, p
		}
		if c.Service == "" {
			return nil, fmt.Errorf("call %q: missing service name (want service[:port][/path])", item)
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// sidecarSocketHost stands for a sidecar on a Unix socket in proxy URLs.
const sidecarSocketHost = "sidecar.invalid:15001"

// Config describes one instance (pod) of a sample service.
type Config struct {
	// Service, Version, Pod and Namespace identify the instance; they are
	// echoed in every Reply and in the x-fakesvc-* response headers.
	// Service is required; Namespace defaults to "default".
	Service, Version, Pod, Namespace string
	// Latency is the app's own service time, slept on every request.
	Latency registry.Latency
	// ErrorRate in [0,1] is the share of requests answered with ErrorStatus
	// (after the latency, without making the downstream calls).
	ErrorRate float64
	// ErrorStatus is the status of injected errors; 0 means 503.
	ErrorStatus int
	// GRPCCode is the status of injected errors on gRPC calls (grpc.go);
	// 0 means UNAVAILABLE (14).
	GRPCCode int
	// Calls are made in order on each request.
	Calls []Call
	// GRPCCall is how the gRPC calls are made (grpc_call.go): the
	// client's deadline, and the echo service's method (Unary or Stream).
	GRPCCall registry.GRPCCall
	// Proxy is the sidecar's outbound address "host:port", or "unix:/path"
	// for a sidecar on a Unix socket. Calls go to it as
	// an HTTP forward proxy with URL
	// http://<service>.<namespace>.svc.cluster.local:<port><path>, so the
	// sidecar routes by Host. Empty Proxy: call http://<service>:<port><path>
	// directly (no mesh).
	Proxy string
	// Resolve, for an app without a sidecar, turns a called service and port
	// into a pod address, as a ClusterIP and kube-proxy would; nil dials the
	// name as written.
	Resolve func(service string, port int) (string, error)
	// XDSBootstrap, when set, makes the gRPC calls proxyless
	// (proxyless.go): grpc-go's xDS resolver with this bootstrap, straight
	// to the endpoints it picks, not through Proxy.
	XDSBootstrap []byte
	// OnCalleeError is what the instance answers when a call fails (a
	// transport error or a 4xx/5xx answer): OnCalleeErrorFail ("" too)
	// passes the failure up and makes no further calls; OnCalleeErrorDegrade
	// makes the remaining calls and answers 200 with a partial body
	// (Reply.Degraded), as a front end that catches the error does.
	OnCalleeError string
	// TCP makes the instance a raw TCP service: every connection of its
	// Listener gets the TCP echo (tcp.go), none reaches HTTP.
	TCP bool
	// Seed seeds the latency/error random stream. Every seed, 0 included,
	// gives a reproducible stream; give each instance its own seed for
	// independent behaviour.
	Seed int64
}

// settings is the part of the configuration that can change while serving.
// It is immutable once published through Server.settings.
type settings struct {
	latency     registry.Latency // Dist normalised
	errorRate   float64
	errorStatus int
	grpcCode    codes.Code
}

// Server is one running instance of a sample service. It is an http.Handler.
type Server struct {
	service, version, pod, namespace string
	calls                            []Call // normalised
	grpcCall                         registry.GRPCCall
	viaProxy                         bool
	degrade                          bool // Config.OnCalleeError is degrade
	tcp                              bool // Config.TCP

	settings atomic.Pointer[settings]

	mu  sync.Mutex // guards rng
	rng *rand.Rand

	transport *http.Transport
	client    *http.Client
	// grpc serves the echo service (grpc.go); grpcConns are the client
	// connections of gRPC calls, by target.
	grpc      *grpc.Server
	grpcMu    sync.Mutex
	grpcConns map[string]*grpc.ClientConn
	dialer    *net.Dialer
	proxy     string
	resolve   func(service string, port int) (string, error)
	xds       resolver.Builder // proxyless gRPC calls (proxyless.go); nil: none
}

// New validates cfg and returns a Server ready to serve.
func New(cfg Config) (*Server, error) {
	if strings.TrimSpace(cfg.Service) == "" {
		return nil, errors.New("fakesvc: service name is required")
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	lat, err := normalizeLatency(cfg.Latency)
	if err != nil {
		return nil, err
	}
	status, err := checkErrors(cfg.ErrorRate, cfg.ErrorStatus)
	if err != nil {
		return nil, err
	}
	switch cfg.OnCalleeError {
	case "", OnCalleeErrorFail, OnCalleeErrorDegrade:
	default:
		return nil, fmt.Errorf("fakesvc: onCalleeError %q: want %s or %s", cfg.OnCalleeError, OnCalleeErrorFail, OnCalleeErrorDegrade)
	}
	grpcCode, err := checkGRPCCode(cfg.GRPCCode)
	if err != nil {
		return nil, err
	}
	if err := checkGRPCCall(cfg.GRPCCall); err != nil {
		return nil, err
	}
	calls := make([]Call, 0, len(cfg.Calls))
	for i, c := range cfg.Calls {
		if strings.TrimSpace(c.Service) == "" {
			return nil, fmt.Errorf("fakesvc: call %d: service name is required", i)
		}
		if c.Port < 0 || c.Port > 65535 {
			return nil, fmt.Errorf("fakesvc: call %d (%s): port %d out of range 0..65535", i, c.Service, c.Port)
		}
		calls = append(calls, c.normalized())
	}

	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if cfg.Resolve != nil && cfg.Proxy == "" {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			p, _ := strconv.Atoi(port)
			to, err := cfg.Resolve(host, p)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, to)
		}
	}
	tr := &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Proxy stays nil without a sidecar: the environment's HTTP_PROXY must
		// never capture the mesh's traffic.
	}
	if path, ok := strings.CutPrefix(cfg.Proxy, "unix:"); ok {
		// A sidecar on a Unix socket of the pod's own: every call is sent
		// to it as to a forward proxy, over that socket.
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: sidecarSocketHost})
		tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			if addr != sidecarSocketHost {
				return nil, fmt.Errorf("fakesvc: %s: only the sidecar is reachable", addr)
			}
			return dialer.DialContext(ctx, "unix", path)
		}
	} else if cfg.Proxy != "" {
		if _, _, err := net.SplitHostPort(cfg.Proxy); err != nil {
			return nil, fmt.Errorf("fakesvc: proxy %q: want host:port: %w", cfg.Proxy, err)
		}
		pu, err := url.Parse("http://" + cfg.Proxy)
		if err != nil {
			return nil, fmt.Errorf("fakesvc: proxy %q: %w", cfg.Proxy, err)
		}
		tr.Proxy = http.ProxyURL(pu)
	}

	s := &Server{
		service:   cfg.Service,
		version:   cfg.Version,
		pod:       cfg.Pod,
		namespace: ns,
		calls:     calls,
		grpcCall:  cfg.GRPCCall,
		viaProxy:  cfg.Proxy != "",
		degrade:   cfg.OnCalleeError == OnCalleeErrorDegrade,
		tcp:       cfg.TCP,
		rng:       newRand(cfg.Seed),
		transport: tr,
		client: &http.Client{
			Transport: tr,
			// Redirects are answers too: a fake service never follows them.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	s.dialer, s.proxy, s.resolve = dialer, cfg.Proxy, cfg.Resolve
	if s.xds, err = xdsResolver(cfg.XDSBootstrap); err != nil {
		return nil, err
	}
	s.grpc = newGRPCServer(s)
	s.settings.Store(&settings{latency: lat, errorRate: cfg.ErrorRate, errorStatus: status, grpcCode: grpcCode})
	if err := s.connectProxyless(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func newRand(seed int64) *rand.Rand {
	u := uint64(seed)
	return rand.New(rand.NewPCG(u, u^0x9e3779b97f4a7c15))
}

// SetLatency changes the service time; it is safe to call while serving.
func (s *Server) SetLatency(l registry.Latency) error {
	lat, err := normalizeLatency(l)
	if err != nil {
		return err
	}
	for {
		old := s.settings.Load()
		next := *old
		next.latency = lat
		if s.settings.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// SetErrors changes the injected error rate and status (0 means 503); it is
// safe to call while serving.
func (s *Server) SetErrors(rate float64, status int) error {
	st, err := checkErrors(rate, status)
	if err != nil {
		return err
	}
	for {
		old := s.settings.Load()
		next := *old
		next.errorRate, next.errorStatus = rate, st
		if s.settings.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// Close closes the idle connections of the outbound client, its gRPC
// connections and the gRPC server's streams.
func (s *Server) Close() {
	s.transport.CloseIdleConnections()
	s.closeGRPC()
	s.grpc.Stop()
}

// Latency distribution names.
const (
	distFixed       = "fixed"
	distNormal      = "normal"
	distExponential = "exponential"
	distUniform     = "uniform"
)

func normalizeLatency(l registry.Latency) (registry.Latency, error) {
	if l.Mean < 0 || l.StdDev < 0 {
		return l, fmt.Errorf("fakesvc: latency mean %s and stddev %s must not be negative", l.Mean, l.StdDev)
	}
	d := strings.ToLower(strings.TrimSpace(l.Dist))
	switch d {
	case "", distFixed:
		d = distFixed
	case distNormal, distExponential, distUniform:
	default:
		return l, fmt.Errorf("fakesvc: unknown latency distribution %q (want fixed, normal, exponential or uniform)", l.Dist)
	}
	l.Dist = d
	return l, nil
}

func checkErrors(rate float64, status int) (int, error) {
	if math.IsNaN(rate) || rate < 0 || rate > 1 {
		return 0, fmt.Errorf("fakesvc: error rate %v must be in [0,1]", rate)
	}
	if status == 0 {
		status = DefaultErrorStatus
	}
	if status < 400 || status > 599 {
		return 0, fmt.Errorf("fakesvc: error status %d must be in 400..599", status)
	}
	return status, nil
}

// sampleLatency draws one service time from l (Dist already normalised by
// normalizeLatency; an unknown Dist is treated as fixed).
func sampleLatency(l registry.Latency, r *rand.Rand) time.Duration {
	mean, sd := float64(l.Mean), float64(l.StdDev)
	var v float64
	switch l.Dist {
	case distNormal:
		v = mean + sd*r.NormFloat64()
	case distExponential:
		v = mean * r.ExpFloat64()
	case distUniform:
		v = mean - sd + 2*sd*r.Float64()
	default:
		v = mean
	}
	if v <= 0 {
		return 0
	}
	if v >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(v)
}

// draw samples the latency and decides whether this request fails, under
// one lock so a seeded stream stays reproducible.
func (s *Server) draw(st *settings) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := sampleLatency(st.latency, s.rng)
	fail := false
	switch {
	case st.errorRate >= 1:
		fail = true
	case st.errorRate > 0:
		fail = s.rng.Float64() < st.errorRate
	}
	return d, fail
}

// Reply is the JSON body every instance answers with.
type Reply struct {
	// Service, Version, Pod and Namespace identify the answering instance.
	Service   string `json:"service"`
	Version   string `json:"version"`
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	// Peer is the caller's identity: the URI= value of the
	// x-forwarded-client-cert header (the nearest hop), else empty.
	Peer string `json:"peer,omitempty"`
	// Code is the status this instance answered.
	Code int `json:"code"`
	// Attempt is the x-envoy-attempt-count header seen.
	Attempt string `json:"attempt,omitempty"`
	// RequestID is the x-request-id header seen.
	RequestID string `json:"requestId,omitempty"`
	// Calls are the answers of the services this instance called, decoded
	// from their bodies; on a non-JSON or failed call, a Reply with Service
	// set, Code the status (0 on a transport failure) and Error.
	Calls []Reply `json:"calls,omitempty"`
	// Error describes why this instance (or a call) failed; on a degraded
	// answer, which calls failed.
	Error string `json:"error,omitempty"`
	// Degraded is set on a 200 answered without some callee's part
	// (OnCalleeErrorDegrade): the failed calls are in Calls with their codes.
	Degraded bool `json:"degraded,omitempty"`
	// ConfigVersion is the mesh config version the caller's sidecar routed
	// this call under (its x-meshbench-config-version response header).
	ConfigVersion string `json:"configVersion,omitempty"`
	// Flags are the response flags the caller's sidecar set (x-meshbench-response-flags), e.g. URX.
	Flags string `json:"flags,omitempty"`
	// GRPCStatus is the gRPC status code of a gRPC call.
	GRPCStatus *int `json:"grpcStatus,omitempty"`
	// Messages is how many replies a server-streaming gRPC call received
	// before it ended, with its status (set for Stream calls only).
	Messages *int `json:"messages,omitempty"`
	// Deadline is the time its gRPC deadline left a call when the
	// answering instance got it (a Go duration), "" for a call without
	// one: what the caller's grpc-timeout became on its way through the
	// mesh.
	Deadline string `json:"deadline,omitempty"`
}

// Response headers a sidecar adds that a call's Reply records.
const (
	HeaderConfigVersion = "x-meshbench-config-version"
	HeaderFlags         = "x-meshbench-response-flags"
)

// ServeHTTP answers one request: GET /healthz answers "ok" at once; anything
// else, whatever its method, sleeps the sampled latency, may fail with the
// injected error, and otherwise makes every Call in order and answers with
// the Reply JSON. Its HTTP calls have the request's method (and no body),
// as they carry its propagated headers, so that a load's GET or DELETE
// reaches the services behind the one it calls (an AuthorizationPolicy's
// methods judge the caller's call).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isGRPC(r) {
		s.grpc.ServeHTTP(w, r)
		return
	}
	// Drain what the caller sent so its connection can be reused.
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxInboundDrain))
	}
	h := w.Header()
	h.Set(HeaderService, s.service)
	h.Set(HeaderVersion, s.version)
	h.Set(HeaderPod, s.pod)

	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
		return
	}

	ctx := r.Context()
	st := s.settings.Load()
	delay, fail := s.draw(st)
	if !pause(ctx, delay) {
		return // the caller is gone; nobody reads an answer
	}

	reply := Reply{
		Service:   s.service,
		Version:   s.version,
		Pod:       s.pod,
		Namespace: s.namespace,
		Peer:      peerFromXFCC(r.Header.Values("X-Forwarded-Client-Cert")),
		Attempt:   r.Header.Get("X-Envoy-Attempt-Count"),
		RequestID: r.Header.Get("X-Request-Id"),
	}
	if fail {
		reply.Code = st.errorStatus
		reply.Error = fmt.Sprintf("injected error %d", st.errorStatus)
		writeReply(w, &reply)
		return
	}

	reply.Code = http.StatusOK
	fwd := propagated(r.Header)
	var failed []string
	for _, c := range s.calls {
		sub, status, err := s.call(ctx, c, r.Method, fwd)
		reply.Calls = append(reply.Calls, sub)
		var why string
		code := status
		switch {
		case err != nil:
			code, why = http.StatusBadGateway, fmt.Sprintf("call %s: %v", c.Service, err)
		case status >= 400:
			// A refusal (4xx, e.g. an authorization policy's 403) or a
			// failure (5xx) of a callee is passed on, so the load sees
			// what the mesh did.
			why = fmt.Sprintf("call %s: answered %d", c.Service, status)
		default:
			continue
		}
		if s.degrade {
			// The caller catches it: the other parts are still served.
			failed = append(failed, why)
			continue
		}
		reply.Code, reply.Error = code, why
		break
	}
	if len(failed) > 0 {
		reply.Degraded = true
		reply.Error = "degraded: " + strings.Join(failed, "; ")
	}
	writeReply(w, &reply)
}

func writeReply(w http.ResponseWriter, reply *Reply) {
	body, err := json.Marshal(reply)
	if err != nil { // cannot happen with these field types
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(reply.Code)
	_, _ = w.Write(append(body, '\n'))
}

// url returns the URL a call is sent to.
func (s *Server) url(c Call) string {
	host := c.Service
	if s.viaProxy {
		host = istionames.ServiceHost(c.Service, s.namespace)
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Port)) + c.Path
}

// call makes one downstream call, an HTTP one with method. It returns the
// Reply to record, the HTTP status (0 on a transport failure) and the
// transport error, if any.
func (s *Server) call(ctx context.Context, c Call, method string, hdr http.Header) (Reply, int, error) {
	switch c.Protocol {
	case CallGRPC:
		// The safety bound is no deadline: grpc-go would send it as
		// grpc-timeout, where a gRPC client that sets none sends none.
		ctx, cancel := context.WithCancel(ctx)
		defer time.AfterFunc(callTimeout, cancel).Stop()
		defer cancel()
		return s.callGRPC(ctx, c, hdr)
	case CallTCP:
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		return s.callTCP(ctx, c, hdr)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url(c), http.NoBody)
	if err != nil {
		return Reply{Service: c.Service, Error: err.Error()}, 0, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Reply{Service: c.Service, Error: err.Error()}, 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		err = fmt.Errorf("reading the answer: %w", err)
		return Reply{Service: c.Service, Code: resp.StatusCode, Error: err.Error()}, 0, err
	}
	var sub Reply
	if method == http.MethodHead && len(body) == 0 {
		// An answer to HEAD has no body (RFC 9110 9.3.2): only its status.
		return Reply{Service: c.Service, Code: resp.StatusCode, ConfigVersion: resp.Header.Get(HeaderConfigVersion), Flags: resp.Header.Get(HeaderFlags)},
			resp.StatusCode, nil
	}
	if json.Unmarshal(body, &sub) != nil || sub.Service == "" {
		return Reply{
			Service:       c.Service,
			Code:          resp.StatusCode,
			Error:         fmt.Sprintf("answered %d with a non-JSON body: %q", resp.StatusCode, snippet(body)),
			ConfigVersion: resp.Header.Get(HeaderConfigVersion),
			Flags:         resp.Header.Get(HeaderFlags),
		}, resp.StatusCode, nil
	}
	sub.ConfigVersion = resp.Header.Get(HeaderConfigVersion)
	sub.Flags = resp.Header.Get(HeaderFlags)
	if sub.Code == 0 {
		sub.Code = resp.StatusCode
	}
	return sub, resp.StatusCode, nil
}

func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// propagated returns the inbound headers passed on to every call: request id,
// trace context and the user headers that header-based routing matches on.
func propagated(in http.Header) http.Header {
	out := make(http.Header)
	for k, vs := range in {
		lk := strings.ToLower(k)
		switch {
		case lk == "x-request-id", lk == "traceparent", lk == "tracestate", lk == "b3",
			lk == "x-ot-span-context", lk == "x-meshbench-user", lk == "end-user",
			strings.HasPrefix(lk, "x-b3-"):
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// peerFromXFCC returns the URI= value of the last (nearest hop) element of
// the x-forwarded-client-cert header values, or "" when there is none.
// Elements are separated by commas and their pairs by semicolons; values may
// be double-quoted with backslash escapes.
func peerFromXFCC(values []string) string {
	peer := ""
	for _, v := range values {
		for _, elem := range splitQuoted(v, ',') {
			uri := ""
			for _, pair := range splitQuoted(elem, ';') {
				k, val, ok := strings.Cut(pair, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "URI") {
					uri = unquote(strings.TrimSpace(val))
				}
			}
			if uri != "" {
				peer = uri
			}
		}
	}
	return peer
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var parts []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && inQuote:
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote removes surrounding double quotes and backslash escapes.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !escaped && c == '\\' {
			escaped = true
			continue
		}
		escaped = false
		b.WriteByte(c)
	}
	return b.String()
}

// pause sleeps d unless ctx ends first; it reports whether it slept all of d.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
