package istionames

import (
	"net/netip"
	"strings"
)

// Host is a hostname as Istio config writes it, possibly a wildcard
// ("*.default.svc.cluster.local", "*"), with Istio's matching rules
// (pkg/config/host/name.go Name).
type Host string

// ResolveHost is the host a VirtualService or DestinationRule in namespace
// configNamespace means by host, as istiod reads it
// (pilot/pkg/model/config.go ResolveShortnameToFQDN, applied to rule hosts
// in push_context.go SetDestinationRules and to VirtualService hosts and
// destinations in virtualservice.go resolveVirtualServiceShortnames): a
// name without a dot is completed with the namespace and the cluster domain
// ("payment" in default → payment.default.svc.cluster.local); "*", IP
// addresses and every name with a dot are taken as written, so
// "payment.default" and "payment.default.svc" name no Kubernetes Service.
func ResolveHost(host, configNamespace string) Host {
	if host == "" || host == "*" || strings.Contains(host, ".") {
		return Host(host)
	}
	if _, err := netip.ParseAddr(host); err == nil { // an IPv6 address has no dot
		return Host(host)
	}
	out := host
	if configNamespace != "" {
		out += "." + configNamespace
	}
	return Host(out + ".svc." + ClusterDomain)
}

// IsWildcard reports whether h starts with "*" (host.Name.IsWildCarded).
func (h Host) IsWildcard() bool { return strings.HasPrefix(string(h), "*") }

// Matches reports whether h and o overlap: equal names, or one covered by
// the other's wildcard, in either direction (host.Name.Matches).
func (h Host) Matches(o Host) bool {
	switch {
	case h.IsWildcard() && o.IsWildcard():
		if len(h) < len(o) {
			return strings.HasSuffix(string(o[1:]), string(h[1:]))
		}
		return strings.HasSuffix(string(h[1:]), string(o[1:]))
	case h.IsWildcard():
		return strings.HasSuffix(string(o), string(h[1:]))
	case o.IsWildcard():
		return strings.HasSuffix(string(h), string(o[1:]))
	}
	return h == o
}

// SubsetOf reports whether o covers h: Matches in one direction only
// (host.Name.SubsetOf). A wildcard is never a subset of a plain name.
func (h Host) SubsetOf(o Host) bool {
	switch {
	case h.IsWildcard() && o.IsWildcard():
		return len(h) >= len(o) && strings.HasSuffix(string(h[1:]), string(o[1:]))
	case h.IsWildcard():
		return false
	case o.IsWildcard():
		return strings.HasSuffix(string(h), string(o[1:]))
	}
	return h == o
}

// NamesService reports whether host, written in a config of namespace
// configNamespace, names the Service name in namespace ns exactly, as
// istiod looks a rule's resolved host up in its service registry
// (route.go separateVSHostsAndServices, model.MostSpecificHostMatch's
// exact case). Wildcards name no service exactly: see CoversService.
func NamesService(host, configNamespace, name, ns string) bool {
	h := ResolveHost(host, configNamespace)
	return !h.IsWildcard() && h == Host(ServiceHost(name, ns))
}

// CoversService reports whether a wildcard host covers the hostname of the
// Service name in namespace ns ("*" and "*.ns.svc.cluster.local" do): the
// wildcard case of model.MostSpecificHostMatch for DestinationRules and of
// separateVSHostsAndServices (svcHost.Matches) for VirtualServices. A
// wildcard is taken as written, so "*.default" covers nothing.
func CoversService(host, configNamespace, name, ns string) bool {
	h := ResolveHost(host, configNamespace)
	return h.IsWildcard() && Host(ServiceHost(name, ns)).SubsetOf(h)
}

// ParseServiceHost splits a Service's cluster-local hostname
// (<name>.<ns>.svc.<ClusterDomain>, see ServiceHost) into its name and
// namespace; ok is false for any other host.
func ParseServiceHost(h Host) (name, ns string, ok bool) {
	rest, found := strings.CutSuffix(string(h), ".svc."+ClusterDomain)
	name, ns, dotted := strings.Cut(rest, ".")
	if !found || !dotted || name == "" || ns == "" || strings.Contains(ns, ".") || h.IsWildcard() {
		return "", "", false
	}
	return name, ns, true
}

// DNSNames reports whether a pod in namespace clientNamespace reaches the
// Service name in namespace ns by the DNS name query. That is the
// Kubernetes DNS search path, not Istio's config rule (see ResolveHost):
// the kubelet gives pods the searches <ns>.svc.<domain>, svc.<domain> and
// <domain> with ndots:5 (kubernetes pkg/kubelet/network/dns/dns.go
// generateSearchesForDNSClusterFirst), so "payment", "payment.default",
// "payment.default.svc" and the FQDN, with or without its final dot, all
// resolve from a pod of namespace default.
func DNSNames(query, clientNamespace, name, ns string) bool {
	fqdn := ServiceHost(name, ns)
	query = strings.TrimSuffix(query, ".")
	if query == fqdn {
		return true
	}
	for _, search := range []string{clientNamespace + ".svc." + ClusterDomain, "svc." + ClusterDomain, ClusterDomain} {
		if query+"."+search == fqdn {
			return true
		}
	}
	return false
}
