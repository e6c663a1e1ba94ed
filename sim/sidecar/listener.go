package sidecar

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshbench/meshbench/sim/istionames"
)

// The listener stage of the request path: which listener took the
// request and which route table it routes with.

func (s *Sidecar) handler(key string, port int) http.Handler {
	switch {
	case key == "outbound":
		return http.HandlerFunc(s.serveOutbound)
	case strings.HasPrefix(key, "inbound:"):
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveInbound(w, r, port) })
	default:
		name := strings.TrimPrefix(key, "router:")
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveRouter(w, r, name) })
	}
}

// serveOutbound routes an app's call by its Host through the outbound
// listener of the destination port.
func (s *Sidecar) serveOutbound(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		s.serveConnect(w, r) // raw TCP (tcpconnect.go)
		return
	}
	st := s.state.Load()
	host, port := hostPort(r.Host, 80)
	chain := st.outboundChain(port)
	if chain != nil {
		s.metrics.downstream(chain, r)
		chain.clientCert.mutate(r, s.cfg.Principal)
	}
	s.route(w, r, st, st.routesOf(chain), chain, host, "source")
}

// serveRouter is the gateway: its listener's RDS routes the request.
func (s *Sidecar) serveRouter(w http.ResponseWriter, r *http.Request, listenerName string) {
	st := s.state.Load()
	var rt *routeTable
	var chain *chainConf
	if l := st.listeners[listenerName]; l != nil && len(l.chains) > 0 {
		chain = &l.chains[0]
		s.metrics.downstream(chain, r)
		chain.clientCert.mutate(r, s.cfg.Principal)
		rt = st.routesOf(chain)
	}
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, rt, chain, host, "source")
}

// serveInbound hands a request to the app through the inline route of the
// virtualInbound chain for this port.
func (s *Sidecar) serveInbound(w http.ResponseWriter, r *http.Request, port int) {
	st := s.state.Load()
	chain := st.inbound[inboundChainKey{port: port, tls: r.TLS != nil}]
	if chain == nil {
		// The listener was rebound since this connection was sorted: no chain takes it now.
		panic(http.ErrAbortHandler)
	}
	s.serveInboundChain(w, r, st, chain)
}

// serveInboundChain applies an inbound chain's RBAC and XFCC and routes
// the request to the app with the chain's inline routes.
func (s *Sidecar) serveInboundChain(w http.ResponseWriter, r *http.Request, st *state, chain *chainConf) {
	principal := peerPrincipal(r)
	s.metrics.downstream(chain, r)
	// Istio's inbound sidecar appends the client's certificate details
	// (APPEND_FORWARD); the chain says what to do.
	chain.clientCert.mutate(r, s.cfg.Principal)
	if !allowed(chain.rbac, rbacInput{r: r, principal: principal}) {
		x := &exchange{start: time.Now(), reporter: "destination", source: peerFromHeaders(r.Header), dest: s.self, flags: flagNone,
			service: istionames.ServiceHost(s.cfg.App, s.cfg.Namespace), security: securityOf(r)}
		if principal != "" {
			x.source.principal = principal
		}
		if len(chain.accessLogs) > 0 {
			w = s.startLog(w, r, x, chain.accessLogs)
			if x.log != nil {
				// Envoy's RBAC filter denial (rbac_filter.cc).
				x.log.details = "rbac_access_denied_matched_policy[none]"
			}
		}
		defer s.finish(x)
		// Envoy's RBAC filter answers 403 "RBAC: access denied" with flag RBAC... Istio shows it as response code 403.
		x.code, x.flags = http.StatusForbidden, "-"
		w.Header().Set("content-type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "RBAC: access denied")
		return
	}
	host, _ := hostPort(r.Host, 80)
	s.route(w, r, st, chain.inline, chain, host, "destination")
}

// normalizePath is the HCM's normalize_path: the path's dot segments
// removed as RFC 3986 section 5.2.4 says, before routing
// (PathUtil::canonicalPath, source/common/http/path_utility.cc); slashes
// are not merged (that is merge_slashes).
func normalizePath(r *http.Request) {
	p := r.URL.Path
	if !strings.Contains(p, ".") {
		return
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case ".":
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
			continue
		}
		if last {
			out = append(out, "")
		}
	}
	if clean := strings.Join(out, "/"); clean != p {
		if !strings.HasPrefix(clean, "/") {
			clean = "/" + clean
		}
		r.URL.Path, r.URL.RawPath = clean, ""
	}
}

func securityOf(r *http.Request) string {
	if r.TLS != nil {
		return "mutual_tls"
	}
	return "none"
}

func hostPort(h string, def int) (string, int) {
	if !strings.Contains(h, ":") {
		// No port: skip SplitHostPort, whose error allocates.
		return strings.ToLower(h), def
	}
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		return strings.ToLower(h), def
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return strings.ToLower(host), def
	}
	return strings.ToLower(host), n
}
