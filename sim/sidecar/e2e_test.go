package sidecar

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// End-to-end tests on the shared rig (rig_test.go): a real xdsserver
// publishes what xdsgen generates; builtin sidecars, each on its pod's own
// 127.x address, fetch it over ADS; httptest apps sit behind their inbound
// listeners; the test is the caller's app, sending through the caller
// sidecar's 15001 listener as an HTTP proxy.

// e2eSeed is the sidecars' Config.Seed in these tests.
const e2eSeed = 7

// (a) Routing by the RouteConfiguration, with the config version on the
// response, and (e) Istio's standard metric at both ends.
func TestE2ERoutingAndMetrics(t *testing.T) {
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{rigDR(nil, "v1", "v2")},
		VirtualServices: []*networkingv1.VirtualService{rigVS(
			&networking.HTTPRoute{Name: "jason", Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{
				"end-user": {MatchType: &networking.StringMatch_Exact{Exact: "jason"}},
			}}}, Route: []*networking.HTTPRouteDestination{rigDest("v2", 0)}},
			&networking.HTTPRoute{Name: "split", Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/split"}}}},
				Route: []*networking.HTTPRouteDestination{rigDest("v1", 80), rigDest("v2", 20)}},
			&networking.HTTPRoute{Name: "rest", Route: []*networking.HTTPRouteDestination{rigDest("v1", 0)}},
		)},
	}
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"}), cfg: cfg, seed: e2eSeed})

	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, "payment-v1-0", r.body, "no match: the catch-all route to subset v1")
	assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	assert.Empty(t, r.flags)

	r = m.get("", "/pay", "end-user", "jason")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, "payment-v2-0", r.body, "header match: subset v2")
	assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	// One attempt each, counted by x-envoy-attempt-count (include_request_attempt_count).
	assert.Equal(t, []string{"1"}, m.apps["payment-v1-0"].attempts())
	assert.Equal(t, []string{"1"}, m.apps["payment-v2-0"].attempts())

	// The short name works too (the virtual host's domains include "payment").
	r = m.get("payment", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, "payment-v1-0", r.body)

	// Weighted 80/20: Binomial(200, 0.2) has mean 40 and sd 5.7; ±30 is > 5 sd.
	const n = 200
	v2 := 0
	for range n {
		r := m.get("", "/split")
		require.Equal(t, http.StatusOK, r.code, r.body)
		if r.body == "payment-v2-0" {
			v2++
		}
	}
	assert.InDelta(t, 40, v2, 30)

	// No virtual host for the Host: 404 with flag NR (Envoy's "No route configured").
	r = m.get("nope.default.svc.cluster.local", "/pay")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "NR", r.flags)

	// (e) istio_requests_total, labels as Istio's standard metrics
	// (istio.io docs, reference/config/metrics): the client side reports as
	// source, the server side as destination, with the workloads of both.
	toV2 := float64(1 + v2)
	toV1 := float64(2 + n - v2)
	src := map[string]string{
		"reporter": "source", "source_workload": "order-v1", "source_app": "order", "source_version": "v1",
		"destination_service": rigPaymentHost, "destination_service_name": "payment", "destination_service_namespace": "default",
		"response_code": "200", "response_flags": "-",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	m.eventuallyCounter("order-v1-0", "istio_requests_total", with(src, "destination_workload", "payment-v2", "destination_version", "v2", "destination_app", "payment"), toV2)
	m.eventuallyCounter("order-v1-0", "istio_requests_total", with(src, "destination_workload", "payment-v1", "destination_version", "v1"), toV1)
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "404", "response_flags": "NR"}, 1)
	dst := with(src, "reporter", "destination", "destination_workload", "payment-v2", "destination_version", "v2", "destination_workload_namespace", "default")
	m.eventuallyCounter("payment-v2-0", "istio_requests_total", dst, toV2)
	m.eventuallyCounter("payment-v2-0", "istio_requests_total", map[string]string{"reporter": "source"}, 0)
}

func breakRouteRegex(res *xdsgen.Resources) {
	for _, rc := range res.Routes {
		if rc.GetName() != "80" {
			continue
		}
		for _, vh := range rc.GetVirtualHosts() {
			if vh.GetName() == rigPaymentHost+":80" {
				vh.Routes[0].Match.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "("}}
			}
		}
	}
}

// (b) A route config the proxy refuses is NACKed: the proxy keeps serving
// the previous version (xDS protocol, "ACK/NACK": the NACK carries the last
// good version_info and error_detail), the control plane records the
// reason, and a later good version is ACKed.
func TestE2ENackKeepsPreviousConfig(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), seed: e2eSeed})
	caller := m.proxies["order-v1-0"]
	require.Equal(t, "1", m.get("", "/pay").hdr.Get(HeaderConfigVersion))

	bad := m.publish(breakRouteRegex)
	err := m.waitConverged(bad)
	require.Error(t, err)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the NACK ends the wait")
	assert.Contains(t, err.Error(), "rejected config "+bad)
	assert.Contains(t, err.Error(), "RouteConfiguration")
	assert.Contains(t, err.Error(), `invalid regex "("`)

	// Every proxy NACKs (they all get RDS "80"); WaitConverged ended on the first.
	var nack *xdsserver.Nack
	require.Eventually(t, func() bool {
		for _, n := range m.xds.Nacks() {
			if n.Node == m.pods[0].NodeID() {
				nack = &n
				return true
			}
		}
		return false
	}, rigWait, time.Millisecond)
	assert.Equal(t, resource.RouteType, nack.TypeURL)
	assert.Equal(t, bad, nack.Refused)
	assert.Equal(t, "1", nack.Version, "the NACK names the version the proxy keeps")
	assert.Contains(t, nack.Reason, `invalid regex "("`)

	// Still served, by version 1's routes.
	for range 5 {
		r := m.get("", "/pay")
		require.Equal(t, http.StatusOK, r.code, r.body)
		assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	}
	assert.Equal(t, "1", caller.Version(resource.RouteType))
	assert.Equal(t, "1", m.xds.Acked(m.pods[0].NodeID(), resource.RouteType))

	// A good version is taken again.
	good := m.publish()
	require.Eventually(t, func() bool {
		return caller.Version(resource.RouteType) == good && m.xds.Acked(m.pods[0].NodeID(), resource.RouteType) == good
	}, rigWait, time.Millisecond)
	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, good, r.hdr.Get(HeaderConfigVersion))
}

// After a NACK, WaitConverged on the next good version returns nil once
// every proxy has ACKed it.
func TestE2EGoodVersionAfterNackConverges(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), seed: e2eSeed})
	bad := m.publish(breakRouteRegex)
	require.Error(t, m.waitConverged(bad))
	good := m.publish()
	require.NoError(t, m.waitConverged(good))
	assert.Equal(t, good, m.get("", "/pay").hdr.Get(HeaderConfigVersion))
}

// (c) Retries. Istio's default policy retries connect-failure twice with the
// previous_hosts predicate (retry.go DefaultPolicy), so a refused endpoint is
// retried on the other one; with attempts 0 there is no policy (retry.go
// ConvertPolicy) and the refused host answers 503 with flag UF ("Upstream
// connection failure in addition to 503 response code", Envoy access log
// response flags). ROUND_ROBIN makes the first pick of every request
// deterministic; with Istio's LEAST_REQUEST a retry may, rarely, land on the
// refused host again within host_selection_retry_max_attempts.
func TestE2ERetriesOnConnectFailure(t *testing.T) {
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{LoadBalancer: rigLB(networking.LoadBalancerSettings_ROUND_ROBIN)})}}
	// payment-v1-1 does not run: its endpoint refuses connections.
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1", Replicas: 2}), cfg: cfg, dead: []string{"payment-v1-1"}, seed: e2eSeed})
	app := m.apps["payment-v1-0"]
	retries := map[string]string{"cluster_name": "outbound|80||" + rigPaymentHost}
	require.Zero(t, m.metric("order-v1-0", "envoy_cluster_upstream_rq_retry", retries))

	const n = 20
	for i := range n {
		r := m.get("", "/pay")
		require.Equal(t, http.StatusOK, r.code, "request %d: %s %s", i, r.flags, r.body)
		assert.Equal(t, "payment-v1-0", r.body)
		assert.Empty(t, r.flags)
	}
	seen := app.attempts()
	require.Len(t, seen, n, "each request reached the app once")
	second := 0
	for _, a := range seen {
		require.Contains(t, []string{"1", "2"}, a)
		if a == "2" {
			second++
		}
	}
	// The app sees the second attempt of the requests whose first went to the refused host.
	assert.Positive(t, second, "attempt counts at the app: %v", seen)
	// Envoy counts each retry in cluster.<name>.upstream_rq_retry.
	assert.Equal(t, float64(second), m.metric("order-v1-0", "envoy_cluster_upstream_rq_retry", retries))
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "200"}, n)

	// No retries: the refused host's share fails.
	m.cfg.VirtualServices = []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route:   []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "payment"}}},
		Retries: &networking.HTTPRetry{Attempts: 0},
	})}
	v := m.publish()
	require.NoError(t, m.waitConverged(v))
	app.reset()
	before := m.metric("order-v1-0", "envoy_cluster_upstream_rq_retry", retries)
	codes := map[int]int{}
	for range 10 {
		r := m.get("", "/pay")
		codes[r.code]++
		require.Equal(t, v, r.hdr.Get(HeaderConfigVersion))
		switch r.code {
		case http.StatusOK:
			assert.Equal(t, "payment-v1-0", r.body)
		case http.StatusServiceUnavailable:
			assert.Equal(t, "UF", r.flags)
		default:
			require.FailNow(t, "unexpected status", "%d %s %s", r.code, r.flags, r.body)
		}
	}
	// ROUND_ROBIN over two hosts, one pick per request: half fail.
	assert.Equal(t, map[int]int{200: 5, 503: 5}, codes)
	for _, a := range app.attempts() {
		assert.Equal(t, "1", a)
	}
	assert.Equal(t, before, m.metric("order-v1-0", "envoy_cluster_upstream_rq_retry", retries))
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "503", "response_flags": "UF"}, 5)
}

// (d) A route timeout ends the request with 504 and flag UT ("Upstream
// request timeout in addition to 504 response code"); Istio's timeout 0s
// (route.go Notimeout) on other routes leaves slow requests alone.
func TestE2ERouteTimeout(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(
		&networking.HTTPRoute{
			Match:   []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "/slow"}}}},
			Route:   []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "payment"}}},
			Timeout: durationpb.New(50 * time.Millisecond),
		},
		&networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "payment"}}}},
	)}}
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), cfg: cfg, seed: e2eSeed})

	r := m.get("", "/slow")
	assert.Equal(t, http.StatusGatewayTimeout, r.code)
	assert.Equal(t, "UT", r.flags)
	assert.Equal(t, "UT", r.hdr.Get("x-meshbench-response-flags"))
	assert.Equal(t, "upstream request timeout", r.body)
	assert.GreaterOrEqual(t, r.took, 50*time.Millisecond)
	assert.Less(t, r.took, 200*time.Millisecond, "answered at the timeout, not when the app finished")
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "504", "response_flags": "UT", "destination_service": rigPaymentHost}, 1)

	// The same slow path on a route without a timeout.
	cfg.VirtualServices[0].Spec.Http[0].Timeout = nil
	v := m.publish()
	require.NoError(t, m.waitConverged(v))
	r = m.get("", "/slow")
	assert.Equal(t, http.StatusOK, r.code, r.body)
	assert.GreaterOrEqual(t, r.took, 200*time.Millisecond)
	assert.Empty(t, r.flags)
}

// (f) The control plane goes away: the proxies keep their last config and
// serve; when it comes back on the same address they reconnect (with
// back-off), resume, and ACK the next version.
func TestE2EControlPlaneRestart(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), seed: e2eSeed})
	addr := m.xds.Addr()
	require.Equal(t, "1", m.get("", "/pay").hdr.Get(HeaderConfigVersion))

	m.xds.Stop()
	for range 10 {
		r := m.get("", "/pay")
		require.Equal(t, http.StatusOK, r.code, r.body)
		assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	}

	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	require.NoError(t, m.xds.Start(ctx, addr))
	v := m.publish()
	require.NoError(t, m.waitConverged(v))
	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, v, r.hdr.Get(HeaderConfigVersion))
	for _, typ := range xdsserver.TypeURLs {
		for _, sc := range m.proxies {
			assert.Equal(t, v, sc.Version(typ), typ)
		}
	}
}

// Guard the helper: a closed address refuses, so "not running" pods are real connect failures.
func TestE2ESubnetAddressesRefuse(t *testing.T) {
	alloc := rigSubnet(t)
	a, err := alloc()
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", netip.AddrPortFrom(a, 8080).String(), time.Second)
	require.Error(t, err)
	assert.Contains(t, fmt.Sprint(err), "refused")
}

// The config version a response carries is the one of the sidecar that
// routed it: one an upstream (its app, or its own sidecar) sent is not let
// through over it.
func TestResponseKeepsTheRoutingSidecarsConfigVersion(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), seed: e2eSeed, handlers: map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderConfigVersion, "from-the-app")
			_, _ = w.Write([]byte("payment-v1-0"))
		},
	}})
	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, []string{"1"}, r.hdr.Values(HeaderConfigVersion))
}
