package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Envoy's server states, as server.state and /ready report them
// (envoy.admin.v3.ServerInfo.State; pilot-agent's copy of the numbers is
// pilot/cmd/pilot-agent/status/ready/probe.go).
const (
	stateLive            = 0
	stateDraining        = 1
	statePreInitializing = 2
	stateInitializing    = 3
)

var stateNames = map[int]string{stateLive: "LIVE", stateDraining: "DRAINING", statePreInitializing: "PRE_INITIALIZING", stateInitializing: "INITIALIZING"}

// adminState is Envoy's admin API of one sidecar, and the bootstrap's
// static listeners.
type adminState struct {
	s       *Sidecar
	started time.Time
	servers []*boundServer // the admin's and the static listeners'

	// Envoy's counters pilot-agent reads (pilot/cmd/pilot-agent/status/util/stats.go).
	cdsAttempt, cdsSuccess, cdsRejected atomic.Uint64
	ldsAttempt, ldsSuccess, ldsRejected atomic.Uint64
	workersStarted                      atomic.Bool // latched once LIVE, as listener_manager.workers_started
	healthFailed                        atomic.Bool // POST /healthcheck/fail
	stoppedAll, stoppedInbound          atomic.Bool // POST /drain_listeners

	mu  sync.Mutex
	raw map[string]rawResources // by type URL, the last accepted update
	// quit is closed by POST /quitquitquit.
	quit     chan struct{}
	quitOnce sync.Once
}

type rawResources struct {
	version string
	at      time.Time
	res     []*anypb.Any
}

// Quit is closed when POST /quitquitquit asks the proxy to exit; nil
// without an admin.
func (s *Sidecar) Quit() <-chan struct{} {
	if s.admin == nil {
		return nil
	}
	return s.admin.quit
}

// AdminAddr is where the admin API listens, "" without one.
func (s *Sidecar) AdminAddr() string {
	if s.admin == nil || len(s.admin.servers) == 0 {
		return ""
	}
	return s.admin.servers[0].addr
}

// startAdmin binds the admin API and the static listeners.
func (s *Sidecar) startAdmin() error {
	a := &adminState{s: s, started: time.Now(), raw: map[string]rawResources{}, quit: make(chan struct{})}
	s.admin = a
	b, err := s.serve(s.cfg.Admin, "admin", a.mux())
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	a.servers = append(a.servers, b)
	for _, l := range s.cfg.StaticListeners {
		h := l.handler()
		for _, addr := range l.Addrs {
			b, err := s.serve(addr, "static:"+l.Name, h)
			if err != nil {
				for _, b := range a.servers {
					b.close()
				}
				return fmt.Errorf("static listener %s: %w", l.Name, err)
			}
			a.servers = append(a.servers, b)
		}
	}
	return nil
}

// stopped tells whether POST /drain_listeners has stopped the listeners a
// bound server of key belongs to. Safe on a nil adminState.
func (a *adminState) stopped(key string) bool {
	if a == nil {
		return false
	}
	return a.stoppedAll.Load() || (a.stoppedInbound.Load() && strings.HasPrefix(key, "inbound:"))
}

// counting wraps the ADS applier with Envoy's update counters and keeps
// what was accepted for /config_dump.
func (a *adminState) counting(next applier) applier {
	return func(typeURL, version string, res []*anypb.Any) (map[string][]string, error) {
		attempt, success, rejected := a.counters(typeURL)
		if attempt != nil {
			attempt.Add(1)
		}
		deps, err := next(typeURL, version, res)
		if err != nil {
			if rejected != nil {
				rejected.Add(1)
			}
			return deps, err
		}
		if success != nil {
			success.Add(1)
		}
		a.mu.Lock()
		a.raw[typeURL] = rawResources{version: version, at: time.Now(), res: res}
		a.mu.Unlock()
		return deps, nil
	}
}

func (a *adminState) counters(typeURL string) (attempt, success, rejected *atomic.Uint64) {
	switch typeURL {
	case resource.ClusterType:
		return &a.cdsAttempt, &a.cdsSuccess, &a.cdsRejected
	case resource.ListenerType:
		return &a.ldsAttempt, &a.ldsSuccess, &a.ldsRejected
	}
	return nil, nil, nil
}

// state is Envoy's server state: PRE_INITIALIZING until the cluster
// manager has its clusters (CDS), INITIALIZING until every type the
// listeners and clusters need is in, then LIVE, or DRAINING while the
// health check is failed (Envoy's InstanceBase::serverState).
func (a *adminState) state() int {
	select {
	case <-a.s.ready:
	default:
		a.s.mu.Lock()
		cds := a.s.applied[resource.ClusterType]
		a.s.mu.Unlock()
		if !cds {
			return statePreInitializing
		}
		return stateInitializing
	}
	a.workersStarted.Store(true)
	if a.healthFailed.Load() {
		return stateDraining
	}
	return stateLive
}

type stat struct {
	name  string
	value uint64
	used  bool
}

// stats are the counters and gauges the admin reports, sorted by name.
func (a *adminState) stats() []stat {
	st := a.state()
	gauge := func(name string, v uint64) stat { return stat{name, v, true} }
	counter := func(name string, v *atomic.Uint64) stat { n := v.Load(); return stat{name, n, n > 0} }
	live := uint64(0)
	if st == stateLive {
		live = 1
	}
	workers := uint64(0)
	if a.workersStarted.Load() {
		workers = 1
	}
	out := []stat{
		counter("cluster_manager.cds.update_attempt", &a.cdsAttempt),
		counter("cluster_manager.cds.update_rejected", &a.cdsRejected),
		counter("cluster_manager.cds.update_success", &a.cdsSuccess),
		counter("listener_manager.lds.update_attempt", &a.ldsAttempt),
		counter("listener_manager.lds.update_rejected", &a.ldsRejected),
		counter("listener_manager.lds.update_success", &a.ldsSuccess),
		// A gauge is "used" once set: workers_started only when the workers start.
		{"listener_manager.workers_started", workers, workers == 1},
		gauge("server.live", live),
		gauge("server.state", uint64(st)),
		gauge("server.uptime", uint64(time.Since(a.started).Seconds())),
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (a *adminState) mux() http.Handler {
	mux := http.NewServeMux()
	prom := promhttp.HandlerFor(a.s.metrics.reg, promhttp.HandlerOpts{})
	mux.Handle("/stats/prometheus", prom)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("format") == "prometheus" {
			prom.ServeHTTP(w, r)
			return
		}
		var re *regexp.Regexp
		if f := q.Get("filter"); f != "" {
			var err error
			if re, err = regexp.Compile(f); err != nil {
				http.Error(w, "Invalid re2 regex", http.StatusBadRequest)
				return
			}
		}
		var lines []stat
		for _, s := range a.stats() {
			if (q.Has("usedonly") && !s.used) || (re != nil && !re.MatchString(s.name)) {
				continue
			}
			lines = append(lines, s)
		}
		if q.Get("format") == "json" {
			type js struct {
				Name  string `json:"name"`
				Value uint64 `json:"value"`
			}
			out := struct {
				Stats []js `json:"stats"`
			}{Stats: []js{}}
			for _, s := range lines {
				out.Stats = append(out.Stats, js{s.name, s.value})
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, s := range lines {
			fmt.Fprintf(w, "%s: %d\n", s.name, s.value)
		}
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		st := a.state()
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		if st != stateLive {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, stateNames[st])
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, _ *http.Request) {
		up := durationpb.New(time.Since(a.started).Truncate(time.Second))
		info := &adminv3.ServerInfo{
			Version:            "meshbench/" + BuildVersion + "/Clean/RELEASE/GoTLS",
			State:              adminv3.ServerInfo_State(a.state()),
			UptimeCurrentEpoch: up, UptimeAllEpochs: up,
			HotRestartVersion: "disabled",
			Node:              a.s.cfg.Node,
		}
		writeProtoJSON(w, info)
	})
	mux.HandleFunc("/config_dump", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.configDump())
	})
	post := func(path string, f func(r *http.Request)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(w, "This endpoint requires POST", http.StatusMethodNotAllowed)
				return
			}
			f(r)
			w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
			fmt.Fprintln(w, "OK")
		})
	}
	post("/quitquitquit", func(*http.Request) { a.quitOnce.Do(func() { close(a.quit) }) })
	post("/healthcheck/fail", func(*http.Request) { a.healthFailed.Store(true) })
	post("/healthcheck/ok", func(*http.Request) { a.healthFailed.Store(false) })
	post("/drain_listeners", func(r *http.Request) {
		q := r.URL.Query()
		a.drain(q.Has("inboundonly"), q.Has("graceful"), q.Has("skip_exit"))
	})
	return mux
}

// BuildVersion is the version /server_info reports.
var BuildVersion = "dev"

func writeProtoJSON(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.MarshalOptions{Indent: " ", EmitDefaultValues: true}.Marshal(m) // Envoy prints primitive fields always
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// drain is POST /drain_listeners (Envoy's admin handlerDrainListeners, as
// pilot-agent calls it from pkg/envoy/admin.go at pod termination:
// ?inboundonly&graceful for a sidecar): inboundonly takes only the inbound
// listeners (the static ones have no direction and stay); graceful first
// discourages connections (Connection: close on every response) for
// --drain-time-s, then stops the listeners, unless skip_exit; without
// graceful they stop at once. A stopped listener accepts nothing more, and
// listeners LDS adds later for it are not opened either; connections open
// finish their requests.
func (a *adminState) drain(inboundOnly, graceful, skipExit bool) {
	s := a.s
	pick := func() []*boundServer {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []*boundServer
		for _, b := range s.bound {
			if !inboundOnly || strings.HasPrefix(b.key, "inbound:") {
				out = append(out, b)
			}
		}
		if !inboundOnly {
			out = append(out, a.servers[1:]...) // the static listeners; the admin stays
		}
		return out
	}
	stop := func() {
		if inboundOnly {
			a.stoppedInbound.Store(true)
		} else {
			a.stoppedAll.Store(true)
		}
		for _, b := range pick() {
			go func() { _ = b.srv.Shutdown(context.Background()) }()
		}
	}
	if !graceful {
		stop()
		return
	}
	for _, b := range pick() {
		b.srv.SetKeepAlivesEnabled(false)
	}
	if !skipExit {
		time.AfterFunc(s.cfg.DrainTime, stop)
	}
}

// configDump is /config_dump: the bootstrap and the resources in force as
// they were received, in Envoy's envoy.admin.v3 dump shapes. A resource
// whose nested types this build does not know is shown by type and name.
// Secrets show their names only, as Envoy redacts their keys.
func (a *adminState) configDump() []byte {
	a.mu.Lock()
	raw := map[string]rawResources{}
	for k, v := range a.raw {
		raw[k] = v
	}
	a.mu.Unlock()
	var configs []json.RawMessage
	add := func(v any) {
		b, _ := json.Marshal(v)
		configs = append(configs, b)
	}
	if b := a.s.cfg.Bootstrap; b != nil {
		add(map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": resourceJSON(b, "")})
	}
	ts := func(t time.Time) string { return timestamppb.New(t).AsTime().Format(time.RFC3339Nano) }
	c := raw[resource.ClusterType]
	var clusters []any
	for _, r := range c.res {
		clusters = append(clusters, map[string]any{"version_info": c.version, "cluster": anyJSON(r, &cluster.Cluster{}), "last_updated": ts(c.at)})
	}
	add(map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "version_info": c.version, "dynamic_active_clusters": clusters})
	e := raw[resource.EndpointType]
	var eps []any
	for _, r := range e.res {
		eps = append(eps, map[string]any{"version_info": e.version, "endpoint_config": anyJSON(r, &endpoint.ClusterLoadAssignment{}), "last_updated": ts(e.at)})
	}
	add(map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs": eps})
	l := raw[resource.ListenerType]
	var ls []any
	for _, r := range l.res {
		ls = append(ls, map[string]any{"name": nameOf(r, &listener.Listener{}), "active_state": map[string]any{"version_info": l.version, "listener": anyJSON(r, &listener.Listener{}), "last_updated": ts(l.at)}})
	}
	add(map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "version_info": l.version, "dynamic_listeners": ls})
	rt := raw[resource.RouteType]
	var rs []any
	for _, r := range rt.res {
		rs = append(rs, map[string]any{"version_info": rt.version, "route_config": anyJSON(r, &route.RouteConfiguration{}), "last_updated": ts(rt.at)})
	}
	add(map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": rs})
	sc := raw[resource.SecretType]
	var ss []any
	for _, r := range sc.res {
		n := nameOf(r, &tlsv3.Secret{})
		ss = append(ss, map[string]any{"name": n, "version_info": sc.version, "last_updated": ts(sc.at),
			"secret": map[string]any{"@type": resource.SecretType, "name": n}})
	}
	add(map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamic_active_secrets": ss})
	out, _ := json.MarshalIndent(map[string]any{"configs": configs}, "", " ")
	return out
}

// anyJSON renders a resource as protojson does, or by type and name when a
// nested type is not linked in.
func anyJSON(a *anypb.Any, into proto.Message) json.RawMessage {
	b, err := protojson.Marshal(a)
	if err == nil {
		return b
	}
	return resourceJSON(nil, `{"@type":`+strconv.Quote(a.GetTypeUrl())+`,"name":`+strconv.Quote(nameOf(a, into))+`}`)
}

func resourceJSON(m proto.Message, fallback string) json.RawMessage {
	if m != nil {
		if b, err := protojson.Marshal(m); err == nil {
			return b
		}
	}
	return json.RawMessage(fallback)
}

// nameOf is a resource's name (a ClusterLoadAssignment's cluster_name).
func nameOf(a *anypb.Any, into proto.Message) string {
	if err := proto.Unmarshal(a.GetValue(), into); err != nil {
		return ""
	}
	switch m := into.(type) {
	case *endpoint.ClusterLoadAssignment:
		return m.GetClusterName()
	case interface{ GetName() string }:
		return m.GetName()
	}
	return ""
}

// StaticListener is a listener of the bootstrap's static_resources, as
// Istio's template has them (15090 for Prometheus, 15021 for the health
// check): HTTP, routes matching a path prefix to a static cluster.
type StaticListener struct {
	Name   string
	Addrs  []string // host:port, the address and any additional_addresses
	Routes []StaticRoute
}

// StaticRoute sends the requests whose path starts with Prefix to the
// static cluster's one endpoint.
type StaticRoute struct {
	Prefix   string
	Cluster  string
	Upstream string // host:port
}

// handler routes as Envoy's router does for these routes: first match
// wins; no match is a 404; an upstream that cannot be reached a 503.
func (l StaticListener) handler() http.Handler {
	proxies := make([]*httputil.ReverseProxy, len(l.Routes))
	for i, r := range l.Routes {
		target := &url.URL{Scheme: "http", Host: r.Upstream}
		proxies[i] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				reason := "connection failure"
				var op *net.OpError
				if !errors.As(err, &op) {
					reason = "remote reset"
				}
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "upstream connect error or disconnect/reset before headers. reset reason: %s", reason)
			},
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, rt := range l.Routes {
			if strings.HasPrefix(r.URL.Path, rt.Prefix) {
				proxies[i].ServeHTTP(w, r)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
	})
}
