package spec

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	meshapi "istio.io/api/mesh/v1alpha1"
	telemetryapi "istio.io/api/telemetry/v1alpha1"

	"github.com/meshbench/meshbench/scenarios/spec/protoyaml"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// This file reads meshConfig's tracing and checks Telemetry resources as
// Istio does (pkg/config/validation/validation.go ValidateTelemetry,
// validateTelemetryTracing; pkg/config/validation/agent/validation.go
// ValidateProxyConfig for defaultConfig.tracing). Where meshbench is
// stricter the comment says why: mostly, what sim/xdsgen does not
// translate is refused rather than dropped.

// collectorPort is the port of the trace collector meshbench runs as
// Service zipkin in istio-system (xdsgen.DefaultCollector).
const collectorPort = 9411

// meshTracing reads enableTracing, defaultConfig.tracing,
// extensionProviders and defaultProviders; nil when the scenario sets none
// of them (Istio's defaults).
func (l *loader) meshTracing(s *Scenario, mc *MeshConfigSpec) *meshconfig.Tracing {
	dc := mc.DefaultConfig
	if mc.EnableTracing == nil && (dc == nil || dc.Tracing.Kind == 0) && mc.ExtensionProviders.Kind == 0 && mc.DefaultProviders.Kind == 0 {
		return nil
	}
	out := &meshconfig.Tracing{}
	c := &protoyaml.Converter{Report: func(line int, p, msg string) { l.add(l.display, line, p, "%s", msg) }}
	if mc.EnableTracing != nil {
		out.Disabled = !*mc.EnableTracing
	}
	if dc != nil && dc.Tracing.Kind != 0 {
		const p = "meshConfig.defaultConfig.tracing"
		out.Proxy = &meshapi.Tracing{}
		c.Decode(&dc.Tracing, p, out.Proxy)
		if !c.Failed {
			l.proxyTracing(p, out.Proxy)
		}
	}
	if n := yamlnode.Deref(&mc.ExtensionProviders); n.Kind != 0 && !yamlnode.IsNull(n) {
		const p = "meshConfig.extensionProviders"
		if n.Kind != yaml.SequenceNode {
			l.at(p, "want a list of extension providers, got %s", yamlnode.Describe(n))
		} else {
			first := map[string]int{}
			for i, e := range n.Content {
				ep := &meshapi.MeshConfig_ExtensionProvider{}
				c.Failed = false
				c.Decode(e, yamlnode.Item(p, i), ep)
				if c.Failed {
					continue
				}
				l.extensionProvider(s, yamlnode.Item(p, i), ep, first)
				out.Providers = append(out.Providers, ep)
			}
		}
	}
	if n := &mc.DefaultProviders; n.Kind != 0 && !yamlnode.IsNull(n) {
		const p = "meshConfig.defaultProviders"
		dp := &meshapi.MeshConfig_DefaultProviders{}
		c.Decode(n, p, dp)
		if len(dp.GetMetrics()) > 0 {
			l.at(p+".metrics", "defaultProviders.metrics is not supported by meshbench (only tracing)")
		}
		if len(dp.GetAccessLogging()) > 0 {
			l.at(p+".accessLogging", "defaultProviders.accessLogging is not supported by meshbench (only tracing; see meshConfig.accessLogFile)")
		}
		for i, name := range dp.GetTracing() {
			l.providerKnown(yamlnode.Item(p+".tracing", i), name, *out)
		}
		if len(dp.GetTracing()) > 1 {
			l.warn(l.display, l.ix.line(p+".tracing"), p+".tracing", "istiod uses only the first default tracing provider, %s", dp.GetTracing()[0])
		}
		out.DefaultProviders = dp.GetTracing()
	}
	return out
}

// providerKnown reports a provider name that no extension provider has:
// istiod would find no provider and turn tracing off.
func (l *loader) providerKnown(p, name string, t meshconfig.Tracing) bool {
	if t.Provider(name) != nil {
		return true
	}
	l.at(p, "tracing provider %q is not one of meshConfig.extensionProviders (%s)", name, providerNames(t))
	return false
}

// providerNames lists the extension providers' names, or says none.
func providerNames(t meshconfig.Tracing) string {
	var names []string
	for _, ep := range t.Providers {
		names = append(names, ep.GetName())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(slices.Compact(slices.Sorted(slices.Values(names))), ", ")
}

// proxyTracing checks defaultConfig.tracing: ValidateProxyConfig's checks
// of the zipkin address and custom tags, plus what meshbench refuses.
func (l *loader) proxyTracing(p string, t *meshapi.Tracing) {
	switch t.GetTracer().(type) {
	case nil, *meshapi.Tracing_Zipkin_:
	default:
		name := string(t.ProtoReflect().WhichOneof(t.ProtoReflect().Descriptor().Oneofs().ByName("tracer")).JSONName())
		l.at(p+"."+name, "tracer %s is not supported by meshbench (only zipkin)", name)
	}
	if z := t.GetZipkin(); z != nil {
		if err := proxyAddress(z.GetAddress()); err != nil {
			l.at(p+".zipkin.address", "invalid zipkin config: %v", err)
		}
	}
	if t.GetTlsSettings() != nil {
		l.at(p+".tlsSettings", "tlsSettings is not supported by meshbench: the collector is reached in plain text")
	}
	// Stricter than Istio, which takes any number and uses 1% above 100
	// (tracing.go proxyConfigSamplingValue): such a value is a mistake.
	if s := t.GetSampling(); s < 0 || s > 100 {
		l.at(p+".sampling", "sampling must be in range [0.0, 100.0], got %v", s)
	}
	if l.ix.has(p+".sampling") && t.GetSampling() == 0 {
		l.warn(l.display, l.ix.line(p+".sampling"), p+".sampling", "sampling 0 means unset to istiod: proxies sample PILOT_TRACE_SAMPLING, 1%%; to sample nothing use a Telemetry with randomSamplingPercentage: 0")
	}
	for _, name := range sortedKeys(t.GetCustomTags()) {
		tag := t.GetCustomTags()[name]
		if tag.GetLiteral() == nil && tag.GetHeader() == nil && tag.GetEnvironment() == nil {
			l.at(p+".customTags."+name, "custom tag %q sets none of literal, header, environment", name)
		}
	}
}

// proxyAddress is ValidateProxyAddress: host:port, a DNS name or an IP.
func proxyAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not in 1..65535", port)
	}
	if _, err := netip.ParseAddr(host); err != nil && (len(host) > 253 || !subdomainRE.MatchString(host)) {
		return fmt.Errorf("%q is not a valid hostname or an IP address", host)
	}
	return nil
}

// extensionProvider checks one extension provider: a unique name, the
// zipkin kind, and a service istiod finds (model.LookupCluster: a full
// hostname, or namespace/hostname), which must be meshbench's collector
// or a service of the topology.
func (l *loader) extensionProvider(s *Scenario, p string, ep *meshapi.MeshConfig_ExtensionProvider, first map[string]int) {
	name := ep.GetName()
	switch {
	case name == "":
		l.at(p, "an extension provider needs a name")
	case first[name] != 0:
		l.at(p+".name", "extension provider %q is defined twice (first at line %d)", name, first[name])
	default:
		first[name] = l.ix.line(p + ".name")
	}
	z := ep.GetZipkin()
	if z == nil {
		kind := "none"
		if f := ep.ProtoReflect().WhichOneof(ep.ProtoReflect().Descriptor().Oneofs().ByName("provider")); f != nil {
			kind = f.JSONName()
		}
		l.at(p, "extension provider %q: kind %s is not supported by meshbench (only zipkin)", name, kind)
		return
	}
	if z.GetPort() < 1 || z.GetPort() > 65535 {
		l.at(p+".zipkin.port", "port must be in range 1..65535")
	}
	for i, h := range z.GetHeaders() {
		if h.GetEnvName() != "" {
			l.at(yamlnode.Item(p+".zipkin.headers", i)+".envName", "envName is not supported by meshbench: give the value")
		}
	}
	svc := z.GetService()
	ns, host, qualified := strings.Cut(svc, "/")
	if !qualified {
		ns, host = "", svc
	}
	collector := xdsgen.DefaultCollector(netip.AddrPort{})
	topoNS := s.Topology.Namespace
	switch {
	case svc == "":
		l.at(p+".zipkin", "zipkin.service is required")
	case host == collector.FQDN() && (ns == "" || ns == collector.Namespace):
		if z.GetPort() != collectorPort {
			l.at(p+".zipkin.port", "meshbench's collector %s listens on port %d, not %d", collector.FQDN(), collectorPort, z.GetPort())
		}
	case (ns == "" || ns == topoNS) && topologyHost(s, host):
	default:
		l.at(p+".zipkin.service", "istiod finds no Service %q (it wants a full hostname such as %s): tracing would be off; meshbench runs its collector as %s:%d",
			svc, collector.FQDN(), collector.FQDN(), collectorPort)
	}
}

// topologyHost reports whether host is the full hostname of a service of the topology.
func topologyHost(s *Scenario, host string) bool {
	for _, svc := range s.Topology.Services {
		if host == svc.Name+"."+s.Topology.Namespace+".svc."+istionames.ClusterDomain {
			return true
		}
	}
	return false
}

// telemetry checks every Telemetry: ValidateTelemetry, the namespace and
// selector as istiod applies them (applicableTelemetries), providers that
// exist, and refuses what sim/xdsgen does not translate.
func (v *validator) telemetry(objs []*meshObject, tracing meshconfig.Tracing) {
	namespaceWide := map[string]*meshObject{}
	for _, o := range objs {
		if o.tm == nil {
			continue
		}
		bad := func(p, format string, args ...any) { v.objErr(o, p, format, args...) }
		spec := &o.tm.Spec
		for _, f := range []struct {
			field string
			set   bool
			why   string
		}{
			{"metrics", len(spec.GetMetrics()) > 0, "metrics is not supported by meshbench (only tracing): sidecars report Istio's standard metrics"},
			{"accessLogging", len(spec.GetAccessLogging()) > 0, "accessLogging is not supported by meshbench (only tracing; see meshConfig.accessLogFile)"},
			{"targetRef", spec.GetTargetRef() != nil, "targetRef is not supported by meshbench: use a selector"},
			{"targetRefs", len(spec.GetTargetRefs()) > 0, "targetRefs is not supported by meshbench: use a selector"},
		} {
			if f.set {
				bad("spec."+f.field, "%s", f.why)
			}
		}
		sel := spec.GetSelector().GetMatchLabels()
		switch {
		case len(sel) > 0 && o.namespace == meshconfig.RootNamespace:
			// istiod applies it to proxies in the root namespace only:
			// the ingress gateway, whose selection meshbench does not model.
			bad("spec.selector", "a Telemetry with a selector in the root namespace %s applies only to proxies there (the ingress gateway): not supported by meshbench; put it in namespace %s", meshconfig.RootNamespace, v.s.Topology.Namespace)
		case len(sel) > 0:
			v.selectedTargetPorts(o, bad, sel)
		case o.namespace != meshconfig.RootNamespace && o.namespace != v.s.Topology.Namespace:
			bad("metadata.namespace", "Telemetry %s applies to no workload: no pod runs in namespace %s (the services live in namespace %s)", o.name, o.namespace, v.s.Topology.Namespace)
		default:
			if f := namespaceWide[o.namespace]; f != nil {
				bad("metadata.name", "namespace %s has two Telemetries without a selector (the first, %s, at %s:%d): istiod applies only one", o.namespace, f.name, f.file, f.node.Line)
			} else {
				namespaceWide[o.namespace] = o
			}
		}
		for i, t := range spec.GetTracing() {
			v.tracingRule(o, yamlnode.Item("spec.tracing", i), t, tracing)
		}
		if len(spec.GetTracing()) > 1 {
			v.objWarn(o, "spec.tracing", "multiple tracing is not currently supported (Istio's warning): later entries override earlier ones")
		}
	}
}

// tracingRule checks one entry of a Telemetry's tracing.
func (v *validator) tracingRule(o *meshObject, p string, t *telemetryapi.Tracing, tracing meshconfig.Tracing) {
	bad := func(f, format string, args ...any) { v.objErr(o, yamlnode.Join(p, f), format, args...) }
	if len(t.GetProviders()) > 1 {
		v.objWarn(o, p+".providers", "multiple providers is not currently supported (Istio's warning): istiod uses the first")
	}
	for i, pr := range t.GetProviders() {
		fp := yamlnode.Item("providers", i)
		if pr.GetName() == "" {
			bad(fp, "providers.name may not be empty")
			continue
		}
		if tracing.Provider(pr.GetName()) == nil {
			bad(fp+".name", "tracing provider %q is not one of meshConfig.extensionProviders (%s)", pr.GetName(), providerNames(tracing))
		}
	}
	if len(t.GetProviders()) == 0 && len(tracing.DefaultProviders) == 0 && !t.GetDisableSpanReporting().GetValue() {
		v.objWarn(o, p, "no tracing provider: neither this entry nor meshConfig.defaultProviders.tracing names one, so istiod turns tracing off for the proxies it applies to")
	}
	if r := t.GetRandomSamplingPercentage(); r != nil && (r.GetValue() < 0 || r.GetValue() > 100) {
		bad("randomSamplingPercentage", "randomSamplingPercentage must be in range [0.0, 100.0], got %v", r.GetValue())
	}
	for _, name := range sortedKeys(t.GetCustomTags()) {
		tag := t.GetCustomTags()[name]
		fp := "customTags." + name
		switch {
		case name == "":
			bad("customTags", "tag name may not be empty")
		case tag.GetFormatter() != nil:
			bad(fp+".formatter", "formatter tags are not supported by meshbench (literal, header and environment are)")
		case tag.GetLiteral() != nil && tag.GetLiteral().GetValue() == "":
			bad(fp, "literal tag value may not be empty")
		case tag.GetHeader() != nil && tag.GetHeader().GetName() == "":
			bad(fp, "header tag name may not be empty")
		case tag.GetEnvironment() != nil && tag.GetEnvironment().GetName() == "":
			bad(fp, "environment tag name may not be empty")
		case tag.GetLiteral() == nil && tag.GetHeader() == nil && tag.GetEnvironment() == nil:
			bad(fp, "tag '%s' may not have a nil value", name)
		}
	}
	if t.GetUseRequestIdForTraceSampling() != nil {
		bad("useRequestIdForTraceSampling", "useRequestIdForTraceSampling is not supported by meshbench: sampling follows x-request-id, Istio's default")
	}
	if t.GetDisableContextPropagation() != nil {
		bad("disableContextPropagation", "disableContextPropagation is not supported by meshbench")
	}
}
