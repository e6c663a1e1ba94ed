package sidecar

import (
	"net/netip"
	"slices"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// matchChain picks the filter chain of a connection as Envoy's
// FilterChainManagerImpl::findFilterChain does
// (source/common/listener_manager/filter_chain_manager_impl.cc; the order
// is FilterChainMatch's in listener_components.proto): destination port,
// destination IP, server name, transport protocol, application protocols,
// directly connected source IP, source type, source IP, source port. At
// each step only the chains that match most specifically go on (an exact
// value beats a wildcard, a longer prefix a shorter one, any value an
// unset criterion); Envoy does not backtrack when a later step then leaves
// none. No chain left means default_filter_chain, if any.
func (lc *listenerConf) matchChain(ci *connInfo) *chainConf {
	cands := make([]*chainConf, 0, len(lc.chains))
	for i := range lc.chains {
		cands = append(cands, &lc.chains[i])
	}
	steps := []func(m *chainMatch) int{
		func(m *chainMatch) int { // destination_port
			switch {
			case m.destPort == 0:
				return 0
			case m.destPort == int(ci.dst.Port()):
				return 1
			}
			return -1
		},
		func(m *chainMatch) int { return prefixScore(m.prefixes, ci.dst.Addr()) },
		func(m *chainMatch) int { return serverNameScore(m.serverNames, ci.sni) },
		func(m *chainMatch) int { // transport_protocol
			switch m.transport {
			case "":
				return 0
			case ci.transport:
				return 1
			}
			return -1
		},
		func(m *chainMatch) int { // application_protocols: any of the connection's
			if len(m.appProtos) == 0 {
				return 0
			}
			for _, p := range ci.alpn {
				if slices.Contains(m.appProtos, p) {
					return 1
				}
			}
			return -1
		},
		func(m *chainMatch) int { return prefixScore(m.directSrc, ci.src.Addr()) },
		func(m *chainMatch) int { // source_type
			local := ci.src.Addr().IsLoopback() || ci.src.Addr() == ci.local.Addr()
			switch m.srcType {
			case listener.FilterChainMatch_ANY:
				return 0
			case listener.FilterChainMatch_SAME_IP_OR_LOOPBACK:
				if local {
					return 1
				}
			case listener.FilterChainMatch_EXTERNAL:
				if !local {
					return 1
				}
			}
			return -1
		},
		func(m *chainMatch) int { return prefixScore(m.src, ci.src.Addr()) },
		func(m *chainMatch) int { // source_ports
			switch {
			case len(m.srcPorts) == 0:
				return 0
			case slices.Contains(m.srcPorts, uint32(ci.src.Port())):
				return 1
			}
			return -1
		},
	}
	for _, step := range steps {
		best, kept := -1, cands[:0:0]
		for _, c := range cands {
			switch s := step(&c.match); {
			case s > best:
				best, kept = s, append(kept[:0], c)
			case s == best && s >= 0:
				kept = append(kept, c)
			}
		}
		cands = kept
		if len(cands) == 0 {
			break
		}
	}
	if len(cands) > 0 {
		// Envoy refuses a listener with two chains of the same match, so one is left.
		return cands[0]
	}
	return lc.defaultChain
}

// prefixScore is 0 for no ranges, the longest matching prefix's length
// plus one, or -1 when none matches.
func prefixScore(ps []netip.Prefix, a netip.Addr) int {
	if len(ps) == 0 {
		return 0
	}
	best := -1
	for _, p := range ps {
		if p.Contains(a) && p.Bits()+1 > best {
			best = p.Bits() + 1
		}
	}
	return best
}

// serverNameScore: an exact name beats any wildcard "*.suffix", a longer
// suffix a shorter one (filter_chain_manager_impl.cc findFilterChainForServerName).
func serverNameScore(names []string, sni string) int {
	if len(names) == 0 {
		return 0
	}
	best := -1
	sni = strings.ToLower(sni)
	for _, n := range names {
		n = strings.ToLower(n)
		switch {
		case n == sni && sni != "":
			return 1 << 20
		case strings.HasPrefix(n, "*.") && strings.HasSuffix(sni, n[1:]) && len(n) > best:
			best = len(n)
		}
	}
	return best
}
