package xdsgen_test

import (
	"fmt"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshbench/meshbench/internal/istiotest"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// The security translation checked against Istio's sources (the bare clone
// of istio/istio):
//   - pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication
//     and pilot/pkg/model/authentication.go: which PeerAuthentication
//     applies to a workload's port;
//   - pilot/pkg/networking/core/listener_inbound.go and
//     filterchain_options.go: the inbound filter chains per mode;
//   - pilot/pkg/networking/core/cluster_tls.go buildUpstreamTLSSettings and
//     applyUpstreamTLSSettings, pilot/pkg/model/push_context.go
//     BestEffortInferServiceMTLSMode: DestinationRule tls and auto mTLS;
//   - pilot/pkg/security/authz/builder/builder.go, authz/model/generator.go
//     and authz/matcher/string.go: AuthorizationPolicy to Envoy RBAC.

type mode = security.PeerAuthentication_MutualTLS_Mode

const (
	unset      = security.PeerAuthentication_MutualTLS_UNSET
	strict     = security.PeerAuthentication_MutualTLS_STRICT
	permissive = security.PeerAuthentication_MutualTLS_PERMISSIVE
	disable    = security.PeerAuthentication_MutualTLS_DISABLE
)

// pa is a PeerAuthentication; a nil selector makes it namespace-wide (or
// mesh-wide in istio-system).
func pa(name, ns string, selector map[string]string, m mode, ports map[uint32]mode) *securityv1.PeerAuthentication {
	return istiotest.PeerAuthentication(ns, name, istiotest.MTLS(m, selector, ports))
}

func meshPA(m mode) *securityv1.PeerAuthentication {
	return pa("default", meshconfig.RootNamespace, nil, m, nil)
}

func nsPA(m mode) *securityv1.PeerAuthentication { return pa("default", "default", nil, m, nil) }

func workloadPA(m mode, ports map[uint32]mode) *securityv1.PeerAuthentication {
	return pa("payment", "default", map[string]string{"app": "payment"}, m, ports)
}

// securityRegistry: order (sidecar), payment v1 (sidecar), payment v2
// (no sidecar), legacy (no sidecar).
func securityRegistry(t *testing.T) *registry.Registry {
	no := false
	return newRegistry(t, registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}},
		{Name: "payment", Versions: []registry.Version{{Name: "v1"}, {Name: "v2", Sidecar: &no}}},
		{Name: "legacy", Versions: []registry.Version{{Name: "v1", Sidecar: &no}}},
	}})
}

// ComposePeerAuthentication: mesh (root namespace, no selector) <
// namespace (no selector) < workload (selector) < port-level of the
// workload policy; UNSET inherits from the level above; nothing at all is
// PERMISSIVE. portLevelMtls only counts in a workload policy, and a
// policy with a selector in the root namespace is no workload policy.
func TestPeerModePrecedence(t *testing.T) {
	reg := securityRegistry(t)
	v1 := pod(t, reg, "payment-v1-0")
	for _, c := range []struct {
		name string
		pas  []*securityv1.PeerAuthentication
		port int
		want xdsgen.MTLSMode
	}{
		{"nothing is PERMISSIVE", nil, 8080, xdsgen.MTLSPermissive},
		{"mesh STRICT", []*securityv1.PeerAuthentication{meshPA(strict)}, 8080, xdsgen.MTLSStrict},
		{"mesh UNSET is PERMISSIVE", []*securityv1.PeerAuthentication{meshPA(unset)}, 8080, xdsgen.MTLSPermissive},
		{"namespace over mesh", []*securityv1.PeerAuthentication{meshPA(strict), nsPA(disable)}, 8080, xdsgen.MTLSDisable},
		{"namespace UNSET inherits the mesh", []*securityv1.PeerAuthentication{meshPA(strict), nsPA(unset)}, 8080, xdsgen.MTLSStrict},
		{"workload over namespace", []*securityv1.PeerAuthentication{meshPA(disable), nsPA(permissive), workloadPA(strict, nil)}, 8080, xdsgen.MTLSStrict},
		{"workload UNSET inherits the namespace", []*securityv1.PeerAuthentication{meshPA(strict), nsPA(disable), workloadPA(unset, nil)}, 8080, xdsgen.MTLSDisable},
		{"port level over workload", []*securityv1.PeerAuthentication{workloadPA(strict, map[uint32]mode{8080: disable})}, 8080, xdsgen.MTLSDisable},
		{"port level of another port", []*securityv1.PeerAuthentication{workloadPA(strict, map[uint32]mode{9090: disable})}, 8080, xdsgen.MTLSStrict},
		{"port level UNSET inherits the workload", []*securityv1.PeerAuthentication{meshPA(disable), workloadPA(strict, map[uint32]mode{8080: unset})}, 8080, xdsgen.MTLSStrict},
		{"port level under an UNSET workload inherits the mesh", []*securityv1.PeerAuthentication{meshPA(disable), workloadPA(unset, map[uint32]mode{9090: strict})}, 8080, xdsgen.MTLSDisable},
		{"port level keys are container ports", []*securityv1.PeerAuthentication{workloadPA(disable, map[uint32]mode{80: strict})}, 8080, xdsgen.MTLSDisable},
		{"port level of a namespace policy is ignored", []*securityv1.PeerAuthentication{pa("default", "default", nil, strict, map[uint32]mode{8080: disable})}, 8080, xdsgen.MTLSStrict},
		{"a selector in the root namespace selects nothing", []*securityv1.PeerAuthentication{pa("payment", meshconfig.RootNamespace, map[string]string{"app": "payment"}, strict, nil)}, 8080, xdsgen.MTLSPermissive},
		{"another namespace's policy does not apply", []*securityv1.PeerAuthentication{pa("default", "shop", nil, strict, nil)}, 8080, xdsgen.MTLSPermissive},
		{"a selector of other labels does not apply", []*securityv1.PeerAuthentication{pa("v2", "default", map[string]string{"version": "v2"}, strict, nil)}, 8080, xdsgen.MTLSPermissive},
		{"every label of the selector must match", []*securityv1.PeerAuthentication{pa("v1", "default", map[string]string{"app": "payment", "version": "v1"}, strict, nil)}, 8080, xdsgen.MTLSStrict},
		// Among policies of one level the oldest wins; ours have no creation time, so the first by name.
		{"two namespace policies: the first by name", []*securityv1.PeerAuthentication{pa("b", "default", nil, disable, nil), pa("a", "default", nil, strict, nil)}, 8080, xdsgen.MTLSStrict},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, xdsgen.PeerMode(meshconfig.Config{PeerAuthentications: c.pas}, v1, c.port))
		})
	}
}

// inboundChains returns the virtualInbound listener of a pod.
func inboundListener(t *testing.T, r xdsgen.Resources) *listener.Listener {
	t.Helper()
	for _, l := range r.Listeners {
		if l.GetName() == istionames.VirtualInboundListener {
			return l
		}
	}
	require.FailNow(t, "no virtualInbound listener")
	return nil
}

func downstreamTLS(t *testing.T, ts *core.TransportSocket) *tlsv3.DownstreamTlsContext {
	t.Helper()
	require.Equal(t, xdsgen.TLSSocket, ts.GetName())
	ctx := &tlsv3.DownstreamTlsContext{}
	require.NoError(t, ts.GetTypedConfig().UnmarshalTo(ctx))
	return ctx
}

func upstreamTLS(t *testing.T, ts *core.TransportSocket) *tlsv3.UpstreamTlsContext {
	t.Helper()
	require.Equal(t, xdsgen.TLSSocket, ts.GetName())
	ctx := &tlsv3.UpstreamTlsContext{}
	require.NoError(t, ts.GetTypedConfig().UnmarshalTo(ctx))
	return ctx
}

// assertIstioSDS checks a TLS context uses the workload certificate and the
// root bundle of Istio's agent over SDS (authn/utils BuildInboundTLS,
// cluster_tls.go defaultUpstreamCommonTLSContext).
func assertIstioSDS(t *testing.T, c *tlsv3.CommonTlsContext) {
	t.Helper()
	require.Len(t, c.GetTlsCertificateSdsSecretConfigs(), 1)
	assert.Equal(t, xdsgen.SecretWorkload, c.GetTlsCertificateSdsSecretConfigs()[0].GetName())
	assert.NotNil(t, c.GetTlsCertificateSdsSecretConfigs()[0].GetSdsConfig().GetAds())
	cv := c.GetCombinedValidationContext()
	require.NotNil(t, cv)
	assert.Equal(t, xdsgen.SecretRoot, cv.GetValidationContextSdsSecretConfig().GetName())
}

// listener_inbound.go buildInboundListeners with filterchain_options.go:
// STRICT has one TLS chain (inboundStrictHTTPFilterChainMatchOptions),
// PERMISSIVE a TLS and a plaintext chain sorted by the TLS inspector,
// DISABLE the plaintext chain only (inboundPlainTextHTTPFilterChainMatchOptions).
func TestInboundChainsPerMode(t *testing.T) {
	reg := securityRegistry(t)
	p := pod(t, reg, "payment-v1-0")
	for _, c := range []struct {
		mode       mode
		transports []string
	}{
		{strict, []string{"tls"}},
		{permissive, []string{"tls", "raw_buffer"}},
		{disable, []string{"raw_buffer"}},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			res := xdsgen.New(reg, meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{meshPA(c.mode)}}).ForSidecar(p)
			l := inboundListener(t, res)
			require.Len(t, l.GetListenerFilters(), 1)
			assert.Equal(t, "envoy.filters.listener.tls_inspector", l.GetListenerFilters()[0].GetName())
			var got []string
			for _, fc := range l.GetFilterChains() {
				m := fc.GetFilterChainMatch()
				got = append(got, m.GetTransportProtocol())
				assert.Equal(t, uint32(8080), m.GetDestinationPort().GetValue(), "chains match the container port")
				if m.GetTransportProtocol() == "raw_buffer" {
					assert.Nil(t, fc.GetTransportSocket(), "the plaintext chain has no TLS")
					continue
				}
				ctx := downstreamTLS(t, fc.GetTransportSocket())
				assert.True(t, ctx.GetRequireClientCertificate().GetValue(), "mTLS: the client must present a certificate")
				assertIstioSDS(t, ctx.GetCommonTlsContext())
				assert.Equal(t, []string{"h2", "http/1.1"}, ctx.GetCommonTlsContext().GetAlpnProtocols())
			}
			assert.Equal(t, c.transports, got)
		})
	}
	t.Run("port level", func(t *testing.T) {
		cfg := meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{workloadPA(disable, map[uint32]mode{8080: strict})}}
		l := inboundListener(t, xdsgen.New(reg, cfg).ForSidecar(p))
		require.Len(t, l.GetFilterChains(), 1)
		assert.Equal(t, "tls", l.GetFilterChains()[0].GetFilterChainMatch().GetTransportProtocol())
	})
}

// paymentCluster is the outbound cluster of payment (or of a subset) in order's config.
func paymentCluster(t *testing.T, reg *registry.Registry, cfg meshconfig.Config, subset string) *cluster.Cluster {
	t.Helper()
	res := xdsgen.New(reg, cfg).ForSidecar(pod(t, reg, "order-v1-0"))
	return findCluster(t, res, istionames.ClusterName(istionames.OutboundDirection, 80, subset, paymentHost))
}

// assertAutoMTLS checks Istio's auto mTLS shape (applyUpstreamTLSSettings
// with mtlsCtxType autoDetected): no transport_socket, two matches, the
// first mTLS to endpoints labelled tlsMode=istio, the second plaintext.
func assertAutoMTLS(t *testing.T, c *cluster.Cluster, sni string) {
	t.Helper()
	assert.Nil(t, c.GetTransportSocket())
	ms := c.GetTransportSocketMatches()
	require.Len(t, ms, 2)
	assert.Equal(t, "tlsMode-istio", ms[0].GetName())
	assert.Equal(t, "istio", ms[0].GetMatch().GetFields()["tlsMode"].GetStringValue())
	up := upstreamTLS(t, ms[0].GetTransportSocket())
	assert.Equal(t, sni, up.GetSni())
	assertIstioSDS(t, up.GetCommonTlsContext())
	assert.Equal(t, []string{"istio-peer-exchange", "istio"}, up.GetCommonTlsContext().GetAlpnProtocols())
	var sans []string
	for _, m := range up.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
		assert.Equal(t, tlsv3.SubjectAltNameMatcher_URI, m.GetSanType())
		sans = append(sans, m.GetMatcher().GetExact())
	}
	assert.Equal(t, []string{"spiffe://cluster.local/ns/default/sa/payment"}, sans, "the server must be payment's service account")
	assert.Equal(t, "tlsMode-disabled", ms[1].GetName())
	assert.Empty(t, ms[1].GetMatch().GetFields(), "the fallback matches every other endpoint")
	assert.Equal(t, xdsgen.RawSocket, ms[1].GetTransportSocket().GetName())
}

// Auto mTLS: on unless the destination's namespace (or mesh) policy is
// DISABLE; workload policies are not consulted (BestEffortInferServiceMTLSMode
// looks at GetNamespaceMutualTLSMode only). Endpoints with a sidecar carry
// tlsMode=istio (util.go AppendLbEndpointMetadata); pods without one do not,
// so they get plaintext.
func TestAutoMTLS(t *testing.T) {
	reg := securityRegistry(t)
	const sni = "outbound_.80_._." + paymentHost
	for _, c := range []struct {
		name string
		pas  []*securityv1.PeerAuthentication
		on   bool
	}{
		{"no policy", nil, true},
		{"mesh STRICT", []*securityv1.PeerAuthentication{meshPA(strict)}, true},
		{"mesh DISABLE", []*securityv1.PeerAuthentication{meshPA(disable)}, false},
		{"namespace DISABLE", []*securityv1.PeerAuthentication{nsPA(disable)}, false},
		{"namespace STRICT over mesh DISABLE", []*securityv1.PeerAuthentication{meshPA(disable), nsPA(strict)}, true},
		{"namespace UNSET under mesh DISABLE", []*securityv1.PeerAuthentication{meshPA(disable), nsPA(unset)}, false},
		{"workload DISABLE does not turn it off", []*securityv1.PeerAuthentication{workloadPA(disable, nil)}, true},
		{"port-level DISABLE does not turn it off", []*securityv1.PeerAuthentication{workloadPA(unset, map[uint32]mode{8080: disable})}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := paymentCluster(t, reg, meshconfig.Config{PeerAuthentications: c.pas}, "")
			if !c.on {
				assert.Nil(t, cl.GetTransportSocket())
				assert.Empty(t, cl.GetTransportSocketMatches(), "DISABLE: plaintext to every endpoint")
				return
			}
			assertAutoMTLS(t, cl, sni)
		})
	}
	t.Run("endpoint metadata", func(t *testing.T) {
		res := xdsgen.New(reg, meshconfig.Config{}).ForSidecar(pod(t, reg, "order-v1-0"))
		cla := findCLA(t, res, istionames.ClusterName(istionames.OutboundDirection, 80, "", paymentHost))
		modes := map[string]string{}
		for _, lb := range cla.GetEndpoints()[0].GetLbEndpoints() {
			md := lb.GetMetadata().GetFilterMetadata()
			modes[md["istio"].GetFields()["pod"].GetStringValue()] = md[xdsgen.TransportSocketMatchKey].GetFields()["tlsMode"].GetStringValue()
		}
		assert.Equal(t, map[string]string{"payment-v1-0": "istio", "payment-v2-0": ""}, modes)
	})
	t.Run("subset SNI", func(t *testing.T) {
		cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{dr("payment", versionSubsets("payment", "v1"))}}
		assertAutoMTLS(t, paymentCluster(t, reg, cfg, "v1"), "outbound_.80_.v1_."+paymentHost)
	})
}

// DestinationRule tls (buildUpstreamTLSSettings): a set mode is
// userSupplied, so it goes to transport_socket, with no matches.
// ISTIO_MUTUAL gets the SDS certificate, the service's SANs and the
// automatic SNI; DISABLE and SIMPLE are taken as written.
func TestDestinationRuleTLS(t *testing.T) {
	reg := securityRegistry(t)
	withTLS := func(tls *networking.ClientTLSSettings, sub *networking.ClientTLSSettings) meshconfig.Config {
		spec := &networking.DestinationRule{Host: "payment", TrafficPolicy: &networking.TrafficPolicy{Tls: tls},
			Subsets: []*networking.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}}}
		if sub != nil {
			spec.Subsets[0].TrafficPolicy = &networking.TrafficPolicy{Tls: sub}
		}
		return meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{dr("payment", spec)}}
	}
	t.Run("ISTIO_MUTUAL", func(t *testing.T) {
		// Even to the pod without a sidecar: the user asked for it.
		c := paymentCluster(t, reg, withTLS(&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL}, nil), "")
		assert.Empty(t, c.GetTransportSocketMatches())
		up := upstreamTLS(t, c.GetTransportSocket())
		assertIstioSDS(t, up.GetCommonTlsContext())
		assert.Equal(t, "outbound_.80_._."+paymentHost, up.GetSni())
	})
	t.Run("DISABLE", func(t *testing.T) {
		c := paymentCluster(t, reg, withTLS(&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_DISABLE}, nil), "")
		assert.Nil(t, c.GetTransportSocket())
		assert.Empty(t, c.GetTransportSocketMatches(), "DISABLE wins over auto mTLS")
	})
	t.Run("DISABLE over a STRICT mesh", func(t *testing.T) {
		cfg := withTLS(&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_DISABLE}, nil)
		cfg.PeerAuthentications = []*securityv1.PeerAuthentication{meshPA(strict)}
		c := paymentCluster(t, reg, cfg, "")
		assert.Nil(t, c.GetTransportSocket())
		assert.Empty(t, c.GetTransportSocketMatches())
	})
	t.Run("SIMPLE", func(t *testing.T) {
		c := paymentCluster(t, reg, withTLS(&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_SIMPLE, Sni: "pay.example.com"}, nil), "")
		up := upstreamTLS(t, c.GetTransportSocket())
		assert.Equal(t, "pay.example.com", up.GetSni())
		assert.Empty(t, up.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs(), "SIMPLE presents no client certificate")
	})
	t.Run("subset over host", func(t *testing.T) {
		cfg := withTLS(&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL},
			&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_DISABLE})
		assert.NotNil(t, paymentCluster(t, reg, cfg, "").GetTransportSocket())
		sub := paymentCluster(t, reg, cfg, "v1")
		assert.Nil(t, sub.GetTransportSocket())
		assert.Empty(t, sub.GetTransportSocketMatches())
	})
	t.Run("no tls block: auto mTLS", func(t *testing.T) {
		cfg := withTLS(nil, nil)
		assertAutoMTLS(t, paymentCluster(t, reg, cfg, "v1"), "outbound_.80_.v1_."+paymentHost)
	})
}

func ap(name, ns string, spec *security.AuthorizationPolicy) *securityv1.AuthorizationPolicy {
	return istiotest.AuthorizationPolicy(ns, name, spec)
}

// rbacOf returns the RBAC filters of every inbound chain of a pod, checking
// that each chain has the same ones, in front of the fault filter and the
// router.
func rbacOf(t *testing.T, reg *registry.Registry, cfg meshconfig.Config, podName string) []*rbacfilter.RBAC {
	t.Helper()
	l := inboundListener(t, xdsgen.New(reg, cfg).ForSidecar(pod(t, reg, podName)))
	var first []*rbacfilter.RBAC
	for i, fc := range l.GetFilterChains() {
		m := &hcm.HttpConnectionManager{}
		require.NoError(t, fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(m))
		var out []*rbacfilter.RBAC
		var names []string
		for _, f := range m.GetHttpFilters() {
			names = append(names, f.GetName())
			if f.GetName() != xdsgen.RBACFilter {
				continue
			}
			r := &rbacfilter.RBAC{}
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(r))
			out = append(out, r)
		}
		want := []string{}
		for range out {
			want = append(want, xdsgen.RBACFilter)
		}
		assert.Equal(t, append(want, xdsgen.FaultFilter, "envoy.filters.http.router"), names, "filter order")
		if i == 0 {
			first = out
		} else {
			require.Equal(t, len(first), len(out))
			for j := range out {
				assertProtoEqual(t, first[j], out[j], "chains differ")
			}
		}
	}
	return first
}

func authenticatedIDs(t *testing.T, p *rbacconfig.Principal) []*matcher.StringMatcher {
	t.Helper()
	var out []*matcher.StringMatcher
	for _, id := range p.GetOrIds().GetIds() {
		require.NotNil(t, id.GetAuthenticated(), "%v", id)
		out = append(out, id.GetAuthenticated().GetPrincipalName())
	}
	return out
}

func exactM(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}}
}

func prefixM(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: s}}
}

func regexM(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: s}}}
}

// AuthorizationPolicy → Envoy RBAC, as builder.go does: one filter per
// action, DENY before ALLOW; a policy per rule named
// ns[<namespace>]-policy[<name>]-rule[<index>]; principals matched as
// spiffe://<value> with Istio's wildcards (generator.go
// srcPrincipalGenerator, matcher.StringMatcherWithPrefix); namespaces as
// the regex .*/ns/<namespace>/.* (srcNamespaceGenerator).
func TestRBACTranslation(t *testing.T) {
	reg := securityRegistry(t)
	allow := ap("payment-callers", "default", &security.AuthorizationPolicy{
		Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "payment"}},
		Rules: []*security.Rule{
			{
				From: []*security.Rule_From{{Source: &security.Source{
					Principals: []string{"cluster.local/ns/default/sa/order", "*/sa/audit", "cluster.local/ns/default/sa/pay*", "*"},
				}}},
				To: []*security.Rule_To{{Operation: &security.Operation{Methods: []string{"POST"}, Paths: []string{"/pay", "/pay/*"}}}},
			},
			{From: []*security.Rule_From{{Source: &security.Source{Namespaces: []string{"default", "team-*", "a.b"}}}}},
		},
	})
	deny := ap("deny-blocked", "default", &security.AuthorizationPolicy{
		Action: security.AuthorizationPolicy_DENY,
		Rules:  []*security.Rule{{When: []*security.Condition{{Key: "request.headers[X-Block]", Values: []string{"yes"}}}}},
	})
	mesh := ap("mesh-wide", meshconfig.RootNamespace, &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_DENY, Rules: []*security.Rule{{}}})

	t.Run("DENY first, names per rule", func(t *testing.T) {
		fs := rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{allow, deny}}, "payment-v1-0")
		require.Len(t, fs, 2)
		assert.Equal(t, rbacconfig.RBAC_DENY, fs[0].GetRules().GetAction())
		assert.Equal(t, rbacconfig.RBAC_ALLOW, fs[1].GetRules().GetAction())
		var denyNames, allowNames []string
		for n := range fs[0].GetRules().GetPolicies() {
			denyNames = append(denyNames, n)
		}
		for n := range fs[1].GetRules().GetPolicies() {
			allowNames = append(allowNames, n)
		}
		assert.Equal(t, []string{"ns[default]-policy[deny-blocked]-rule[0]"}, denyNames)
		assert.ElementsMatch(t, []string{"ns[default]-policy[payment-callers]-rule[0]", "ns[default]-policy[payment-callers]-rule[1]"}, allowNames)
	})
	t.Run("principals", func(t *testing.T) {
		fs := rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{allow}}, "payment-v1-0")
		pol := fs[0].GetRules().GetPolicies()["ns[default]-policy[payment-callers]-rule[0]"]
		require.NotNil(t, pol)
		// principals: OR over the from entries, each an AND of its source's fields.
		from := pol.GetPrincipals()[0].GetOrIds().GetIds()
		require.Len(t, from, 1)
		and := from[0].GetAndIds().GetIds()
		require.Len(t, and, 1)
		got := authenticatedIDs(t, and[0])
		want := []*matcher.StringMatcher{
			exactM("spiffe://cluster.local/ns/default/sa/order"),
			regexM(`spiffe://.*/sa/audit`),
			prefixM("spiffe://cluster.local/ns/default/sa/pay"),
			regexM(".+"),
		}
		require.Len(t, got, len(want))
		for i := range want {
			assertProtoEqual(t, want[i], got[i], fmt.Sprintf("principal %d", i))
		}
	})
	t.Run("namespaces", func(t *testing.T) {
		fs := rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{allow}}, "payment-v1-0")
		pol := fs[0].GetRules().GetPolicies()["ns[default]-policy[payment-callers]-rule[1]"]
		and := pol.GetPrincipals()[0].GetOrIds().GetIds()[0].GetAndIds().GetIds()
		require.Len(t, and, 1)
		got := authenticatedIDs(t, and[0])
		want := []*matcher.StringMatcher{regexM(`.*/ns/default/.*`), regexM(`.*/ns/team-.*/.*`), regexM(`.*/ns/a\.b/.*`)}
		require.Len(t, got, len(want))
		for i := range want {
			assertProtoEqual(t, want[i], got[i], fmt.Sprintf("namespace %d", i))
		}
		// No to: any permission.
		assert.True(t, pol.GetPermissions()[0].GetAny())
	})
	t.Run("operations", func(t *testing.T) {
		fs := rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{allow}}, "payment-v1-0")
		perm := fs[0].GetRules().GetPolicies()["ns[default]-policy[payment-callers]-rule[0]"].GetPermissions()[0]
		to := perm.GetOrRules().GetRules()
		require.Len(t, to, 1)
		and := to[0].GetAndRules().GetRules()
		require.Len(t, and, 2, "paths AND methods")
		paths := and[0].GetOrRules().GetRules()
		require.Len(t, paths, 2)
		assertProtoEqual(t, exactM("/pay"), paths[0].GetUrlPath().GetPath())
		assertProtoEqual(t, prefixM("/pay/"), paths[1].GetUrlPath().GetPath())
		methods := and[1].GetOrRules().GetRules()
		require.Len(t, methods, 1)
		assert.Equal(t, ":method", methods[0].GetHeader().GetName())
		assertProtoEqual(t, exactM("POST"), methods[0].GetHeader().GetStringMatch())
	})
	t.Run("when header", func(t *testing.T) {
		fs := rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{deny}}, "payment-v1-0")
		pol := fs[0].GetRules().GetPolicies()["ns[default]-policy[deny-blocked]-rule[0]"]
		s := pol.GetPermissions()[0].String()
		assert.Contains(t, s, `name:"x-block"`, "header names are lower case, as Envoy sees them")
		assert.Contains(t, s, `exact:"yes"`)
		assert.True(t, pol.GetPrincipals()[0].GetOrIds().GetIds()[0].GetAny(), "no from: any principal")
	})
	t.Run("selection", func(t *testing.T) {
		cfg := meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{allow, mesh}}
		assert.Len(t, rbacOf(t, reg, cfg, "payment-v1-0"), 2, "its own and the mesh-wide policy")
		fs := rbacOf(t, reg, cfg, "order-v1-0")
		require.Len(t, fs, 1, "order: only the root namespace's policy, which selects every workload")
		assert.Contains(t, fs[0].GetRules().GetPolicies(), "ns[istio-system]-policy[mesh-wide]-rule[0]")
		other := ap("elsewhere", "shop", &security.AuthorizationPolicy{})
		assert.Empty(t, rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{other}}, "payment-v1-0"),
			"a policy of another namespace does not apply")
		assert.Empty(t, rbacOf(t, reg, meshconfig.Config{}, "payment-v1-0"), "no policy, no filter")
	})
	t.Run("ALLOW without rules allows nothing", func(t *testing.T) {
		nothing := ap("allow-nothing", "default", &security.AuthorizationPolicy{})
		fs := rbacOf(t, reg, meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{nothing}}, "payment-v1-0")
		require.Len(t, fs, 1)
		assert.Equal(t, rbacconfig.RBAC_ALLOW, fs[0].GetRules().GetAction())
		assert.Empty(t, fs[0].GetRules().GetPolicies(), "an ALLOW filter with no policy matches nothing")
	})
}

// The SDS secrets as Istio's agent names them (pkg/security
// WorkloadKeyCertResourceName "default", RootCertReqResourceName "ROOTCA").
func TestSecretsNamesAndTypes(t *testing.T) {
	ss := xdsgen.Secrets([]byte("cert"), []byte("key"), []byte("root"))
	require.Len(t, ss, 2)
	assert.Equal(t, "default", ss[0].GetName())
	assert.Equal(t, []byte("cert"), ss[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	assert.Equal(t, []byte("key"), ss[0].GetTlsCertificate().GetPrivateKey().GetInlineBytes())
	assert.Equal(t, "ROOTCA", ss[1].GetName())
	assert.Equal(t, []byte("root"), ss[1].GetValidationContext().GetTrustedCa().GetInlineBytes())
}
