package xdsgen

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// Names of the SDS secrets Istio's agent serves: the workload certificate
// and the root bundle (pkg/security: WorkloadKeyCertResourceName, RootCertReqResourceName).
const (
	SecretWorkload = "default"
	SecretRoot     = "ROOTCA"
	// TLSSocket and RawSocket are the transport socket names Envoy knows.
	TLSSocket = "envoy.transport_sockets.tls"
	RawSocket = "envoy.transport_sockets.raw_buffer"
	// RBACFilter is Envoy's HTTP RBAC filter.
	RBACFilter = "envoy.filters.http.rbac"
	// TransportSocketMatchKey is the endpoint metadata key Envoy matches
	// transport_socket_matches against (pilot/pkg/networking/util/util.go).
	TransportSocketMatchKey = "envoy.transport_socket_match"
)

// Secrets are the two SDS secrets of a proxy.
func Secrets(certPEM, keyPEM, rootPEM []byte) []*tlsv3.Secret {
	return []*tlsv3.Secret{
		{Name: SecretWorkload, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: certPEM}},
			PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: keyPEM}},
		}}},
		{Name: SecretRoot, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: rootPEM}},
		}}},
	}
}

func sdsConfig(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3,
	}}
}

// commonTLS is Istio's workload TLS context: the SDS certificate, the SDS root
// bundle, and for a client the SANs it accepts.
func commonTLS(sans []string, alpn []string) *tlsv3.CommonTlsContext {
	dv := &tlsv3.CertificateValidationContext{}
	for _, s := range sans {
		dv.MatchTypedSubjectAltNames = append(dv.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}},
		})
	}
	return &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsConfig(SecretWorkload)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         dv,
			ValidationContextSdsSecretConfig: sdsConfig(SecretRoot),
		}},
		AlpnProtocols: alpn,
	}
}

// MTLSMode is a resolved PeerAuthentication mode.
type MTLSMode string

// The modes Istio resolves PeerAuthentication to.
const (
	MTLSStrict     MTLSMode = "STRICT"
	MTLSPermissive MTLSMode = "PERMISSIVE"
	MTLSDisable    MTLSMode = "DISABLE"
)

// PeerMode resolves the mTLS mode of a workload's port as istiod does
// (pilot/pkg/security/authn/policy_applier.go, model/authentication.go):
// a port-level setting of a workload policy, then the workload policy
// (selector), then the namespace policy, then the mesh policy in the root
// namespace; UNSET inherits; nothing at all means PERMISSIVE. Among policies
// of one level the oldest wins; ours have no age, so the first by name.
func PeerMode(cfg meshconfig.Config, p *registry.Pod, port int) MTLSMode {
	var mesh, ns, workload *securityv1.PeerAuthentication
	for _, pa := range sortedPAs(cfg.PeerAuthentications) {
		sel := pa.Spec.GetSelector().GetMatchLabels()
		switch {
		case pa.Namespace == meshconfig.RootNamespace && len(sel) == 0:
			if mesh == nil {
				mesh = pa
			}
		case pa.Namespace == p.Namespace && len(sel) == 0:
			if ns == nil {
				ns = pa
			}
		case pa.Namespace == p.Namespace && registry.Selects(sel, p.Labels):
			if workload == nil {
				workload = pa
			}
		}
	}
	mode := MTLSPermissive
	for _, pa := range []*securityv1.PeerAuthentication{mesh, ns, workload} {
		if pa == nil {
			continue
		}
		if m := modeOf(pa.Spec.GetMtls()); m != "" {
			mode = m
		}
	}
	if workload != nil {
		if pl, ok := workload.Spec.GetPortLevelMtls()[uint32(port)]; ok {
			if m := modeOf(pl); m != "" {
				mode = m
			}
		}
	}
	return mode
}

func modeOf(m *security.PeerAuthentication_MutualTLS) MTLSMode {
	switch m.GetMode() {
	case security.PeerAuthentication_MutualTLS_STRICT:
		return MTLSStrict
	case security.PeerAuthentication_MutualTLS_PERMISSIVE:
		return MTLSPermissive
	case security.PeerAuthentication_MutualTLS_DISABLE:
		return MTLSDisable
	}
	return ""
}

func sortedPAs(in []*securityv1.PeerAuthentication) []*securityv1.PeerAuthentication {
	out := append([]*securityv1.PeerAuthentication(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out
}

// inboundTLS is Istio's inbound DownstreamTlsContext: client certificates required.
func inboundTLS() *core.TransportSocket {
	return &core.TransportSocket{Name: TLSSocket, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{
		CommonTlsContext:         commonTLS(nil, []string{"h2", "http/1.1"}),
		RequireClientCertificate: wrapperspb.Bool(true),
	})}}
}

// applyOutboundTLS sets a cluster's transport sockets: a DestinationRule
// tls mode wins; else Istio's auto mTLS sends mTLS to endpoints labelled
// tlsMode=istio unless the destination namespace's PeerAuthentication is
// DISABLE (cluster_tls.go buildUpstreamTLSSettings, applyUpstreamTLSSettings).
func (g *Generator) applyOutboundTLS(c *cluster.Cluster, s registry.ServiceInfo, tls *networking.ClientTLSSettings, subset map[string]string) {
	sni := fmt.Sprintf("outbound_.%d_.%s_.%s", s.Port, subsetName(c.Name), s.FQDN())
	sans := []string{}
	seen := map[string]bool{}
	for _, p := range g.reg.PodsOf(s.Name) {
		if id := p.SPIFFEID(istionames.TrustDomain); !seen[id] && registry.Selects(subset, p.Labels) {
			seen[id] = true
			sans = append(sans, id)
		}
	}
	// ISTIO_MUTUAL offers istio-peer-exchange and istio, and h2 too on an
	// HTTP/2 cluster (cluster_tls.go: util.ALPNInMeshWithMxc, ALPNInMeshH2WithMxc).
	alpn := []string{"istio-peer-exchange", "istio"}
	if isHTTP2Cluster(c) {
		alpn = []string{"istio-peer-exchange", "istio", "h2"}
	}
	mtls := func() *core.TransportSocket {
		return &core.TransportSocket{Name: TLSSocket, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
			CommonTlsContext: commonTLS(sans, alpn),
			Sni:              sni,
		})}}
	}
	// DISABLE is the zero value of the mode: only a set tls block counts.
	switch mode := tls.GetMode(); {
	case tls == nil:
	case mode == networking.ClientTLSSettings_ISTIO_MUTUAL:
		c.TransportSocket = mtls()
		return
	case mode == networking.ClientTLSSettings_DISABLE:
		return
	case mode == networking.ClientTLSSettings_SIMPLE:
		c.TransportSocket = &core.TransportSocket{Name: TLSSocket, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
			CommonTlsContext: &tlsv3.CommonTlsContext{},
			Sni:              tls.GetSni(),
		})}}
		return
	case mode == networking.ClientTLSSettings_MUTUAL:
		// MUTUAL needs client certificates from files; the local mesh has none.
		return
	}
	// Auto mTLS: off when the PeerAuthentication of the destination's
	// namespace (or, without one, the mesh's) is DISABLE. Like istiod, look
	// no further: workload-level policies do not count, so a workload DISABLE
	// needs a DestinationRule tls DISABLE on its callers
	// (model/push_context.go BestEffortInferServiceMTLSMode). A pod without
	// labels is selected by no workload policy.
	if PeerMode(g.cfg, &registry.Pod{Namespace: s.Namespace}, 0) == MTLSDisable {
		return
	}
	c.TransportSocketMatches = []*cluster.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", Match: &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}}, TransportSocket: mtls()},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: &core.TransportSocket{Name: RawSocket}},
	}
}

func subsetName(cluster string) string {
	_, _, sub, _, _ := istionames.ParseClusterName(cluster)
	return sub
}

// rbacFilters translates the AuthorizationPolicies that select a workload
// into Envoy RBAC filters, DENY before ALLOW (pilot/pkg/security/authz/builder).
//
// forTCP builds them for a TCP chain, as istiod's authz builder does with
// forTCP (model.go checkError, builder.go build): a rule with fields only
// HTTP has is skipped in an ALLOW policy (a smaller allow), and in a DENY
// policy those fields are dropped and the rest kept (a wider deny), so
// that neither fails open.
func (g *Generator) rbacFilters(p *registry.Pod, forTCP bool) []*rbacfilter.RBAC {
	var deny, allow []*securityv1.AuthorizationPolicy
	for _, ap := range g.cfg.AuthorizationPolicies {
		if ap.Namespace != p.Namespace && ap.Namespace != meshconfig.RootNamespace {
			continue
		}
		if !registry.Selects(ap.Spec.GetSelector().GetMatchLabels(), p.Labels) {
			continue
		}
		switch ap.Spec.GetAction() {
		case security.AuthorizationPolicy_DENY:
			deny = append(deny, ap)
		case security.AuthorizationPolicy_ALLOW:
			allow = append(allow, ap)
		}
	}
	var out []*rbacfilter.RBAC
	for _, set := range []struct {
		aps    []*securityv1.AuthorizationPolicy
		action rbacconfig.RBAC_Action
	}{{deny, rbacconfig.RBAC_DENY}, {allow, rbacconfig.RBAC_ALLOW}} {
		if len(set.aps) == 0 {
			continue
		}
		rules := &rbacconfig.RBAC{Action: set.action, Policies: map[string]*rbacconfig.Policy{}}
		for _, ap := range set.aps {
			for i, r := range ap.Spec.GetRules() {
				if forTCP && hasHTTPOnlyFields(r) {
					if set.action == rbacconfig.RBAC_ALLOW {
						continue
					}
					r = withoutHTTPOnlyFields(r)
				}
				rules.Policies[fmt.Sprintf("ns[%s]-policy[%s]-rule[%d]", ap.Namespace, ap.Name, i)] = translateRule(r)
			}
		}
		out = append(out, &rbacfilter.RBAC{Rules: rules})
	}
	return out
}

// hasHTTPOnlyFields reports whether a rule names what only an HTTP request
// has: operation paths, methods or hosts, or a request.* condition (the
// generators that refuse forTCP, authz/model/generator.go).
func hasHTTPOnlyFields(r *security.Rule) bool {
	for _, t := range r.GetTo() {
		op := t.GetOperation()
		if len(op.GetPaths())+len(op.GetNotPaths())+len(op.GetMethods())+len(op.GetNotMethods())+len(op.GetHosts())+len(op.GetNotHosts()) > 0 {
			return true
		}
	}
	for _, w := range r.GetWhen() {
		if strings.HasPrefix(w.GetKey(), "request.") {
			return true
		}
	}
	return false
}

// withoutHTTPOnlyFields is a rule with its HTTP-only fields dropped.
func withoutHTTPOnlyFields(r *security.Rule) *security.Rule {
	out := proto.Clone(r).(*security.Rule)
	for _, t := range out.GetTo() {
		if op := t.GetOperation(); op != nil {
			op.Paths, op.NotPaths, op.Methods, op.NotMethods, op.Hosts, op.NotHosts = nil, nil, nil, nil, nil, nil
		}
	}
	var when []*security.Condition
	for _, w := range out.GetWhen() {
		if !strings.HasPrefix(w.GetKey(), "request.") {
			when = append(when, w)
		}
	}
	out.When = when
	return out
}

// translateRule is one AuthorizationPolicy rule: sources ORed, operations
// ORed, conditions ANDed, and the three ANDed together.
func translateRule(r *security.Rule) *rbacconfig.Policy {
	pol := &rbacconfig.Policy{}
	var ids []*rbacconfig.Principal
	for _, f := range r.GetFrom() {
		src := f.GetSource()
		var and []*rbacconfig.Principal
		if ps := src.GetPrincipals(); len(ps) > 0 {
			and = append(and, orIDs(ps, func(v string) *rbacconfig.Principal {
				// Istio matches principals against spiffe://<value> (authz/model/generator.go srcPrincipalGenerator).
				return authenticated(principalMatch(v))
			}))
		}
		if ns := src.GetNamespaces(); len(ns) > 0 {
			and = append(and, orIDs(ns, func(v string) *rbacconfig.Principal {
				// A * in the namespace matches anything (srcNamespaceGenerator).
				parts := strings.Split(v, "*")
				for i := range parts {
					parts[i] = regexp.QuoteMeta(parts[i])
				}
				return authenticated(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".*/ns/" + strings.Join(parts, ".*") + "/.*"}}})
			}))
		}
		ids = append(ids, andIDs(and))
	}
	if len(ids) == 0 {
		ids = []*rbacconfig.Principal{{Identifier: &rbacconfig.Principal_Any{Any: true}}}
	}
	var conds []*rbacconfig.Permission
	for _, w := range r.GetWhen() {
		if name, ok := strings.CutPrefix(w.GetKey(), "request.headers["); ok {
			name = strings.TrimSuffix(name, "]")
			var or []*rbacconfig.Permission
			for _, v := range w.GetValues() {
				or = append(or, &rbacconfig.Permission{Rule: &rbacconfig.Permission_Header{Header: &route.HeaderMatcher{
					Name: strings.ToLower(name), HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: stringMatch(v)},
				}}})
			}
			conds = append(conds, &rbacconfig.Permission{Rule: &rbacconfig.Permission_OrRules{OrRules: &rbacconfig.Permission_Set{Rules: or}}})
		}
	}
	var ops []*rbacconfig.Permission
	for _, t := range r.GetTo() {
		op := t.GetOperation()
		var and []*rbacconfig.Permission
		if ps := op.GetPaths(); len(ps) > 0 {
			var or []*rbacconfig.Permission
			for _, p := range ps {
				or = append(or, &rbacconfig.Permission{Rule: &rbacconfig.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: stringMatch(p)}}}})
			}
			and = append(and, &rbacconfig.Permission{Rule: &rbacconfig.Permission_OrRules{OrRules: &rbacconfig.Permission_Set{Rules: or}}})
		}
		if ms := op.GetMethods(); len(ms) > 0 {
			var or []*rbacconfig.Permission
			for _, m := range ms {
				or = append(or, &rbacconfig.Permission{Rule: &rbacconfig.Permission_Header{Header: &route.HeaderMatcher{
					Name: ":method", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: stringMatch(m)},
				}}})
			}
			and = append(and, &rbacconfig.Permission{Rule: &rbacconfig.Permission_OrRules{OrRules: &rbacconfig.Permission_Set{Rules: or}}})
		}
		if len(and) == 0 {
			and = []*rbacconfig.Permission{{Rule: &rbacconfig.Permission_Any{Any: true}}}
		}
		ops = append(ops, &rbacconfig.Permission{Rule: &rbacconfig.Permission_AndRules{AndRules: &rbacconfig.Permission_Set{Rules: and}}})
	}
	perm := &rbacconfig.Permission{Rule: &rbacconfig.Permission_Any{Any: true}}
	if len(ops) > 0 {
		perm = &rbacconfig.Permission{Rule: &rbacconfig.Permission_OrRules{OrRules: &rbacconfig.Permission_Set{Rules: ops}}}
	}
	if len(conds) > 0 {
		perm = &rbacconfig.Permission{Rule: &rbacconfig.Permission_AndRules{AndRules: &rbacconfig.Permission_Set{Rules: append([]*rbacconfig.Permission{perm}, conds...)}}}
	}
	pol.Permissions = []*rbacconfig.Permission{perm}
	pol.Principals = []*rbacconfig.Principal{{Identifier: &rbacconfig.Principal_OrIds{OrIds: &rbacconfig.Principal_Set{Ids: ids}}}}
	return pol
}

// stringMatch is Istio's string match for authorization values: "*" any,
// "*suffix" suffix, "prefix*" prefix, else exact, tested in that order
// (authz/matcher/string.go StringMatcherWithPrefix).
func stringMatch(v string) *matcher.StringMatcher {
	switch {
	case v == "*":
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".+"}}}
	case strings.HasPrefix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: strings.TrimPrefix(v, "*")}}
	case strings.HasSuffix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: strings.TrimSuffix(v, "*")}}
	}
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v}}
}

// principalMatch is stringMatch with spiffe:// in front of the value; a
// leading * becomes a regex, since a suffix match would drop the prefix
// (StringMatcherWithPrefix with spiffe.URIPrefix).
func principalMatch(v string) *matcher.StringMatcher {
	const prefix = "spiffe://"
	switch {
	case v == "*":
		return stringMatch(v)
	case strings.HasPrefix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: prefix + ".*" + regexp.QuoteMeta(strings.TrimPrefix(v, "*"))}}}
	}
	return stringMatch(prefix + v)
}

func authenticated(m *matcher.StringMatcher) *rbacconfig.Principal {
	return &rbacconfig.Principal{Identifier: &rbacconfig.Principal_Authenticated_{Authenticated: &rbacconfig.Principal_Authenticated{PrincipalName: m}}}
}

func orIDs(vals []string, f func(string) *rbacconfig.Principal) *rbacconfig.Principal {
	var ids []*rbacconfig.Principal
	for _, v := range vals {
		ids = append(ids, f(v))
	}
	return &rbacconfig.Principal{Identifier: &rbacconfig.Principal_OrIds{OrIds: &rbacconfig.Principal_Set{Ids: ids}}}
}

func andIDs(ids []*rbacconfig.Principal) *rbacconfig.Principal {
	if len(ids) == 0 {
		return &rbacconfig.Principal{Identifier: &rbacconfig.Principal_Any{Any: true}}
	}
	return &rbacconfig.Principal{Identifier: &rbacconfig.Principal_AndIds{AndIds: &rbacconfig.Principal_Set{Ids: ids}}}
}
