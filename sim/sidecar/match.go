package sidecar

import (
	"net/http"
	"strings"
)

// virtualHost selects a virtual host as Envoy does: an exact domain first,
// then the longest suffix wildcard (*.foo), then the longest prefix wildcard
// (foo.*), then "*" (route_config.proto VirtualHost.domains).
func (rt *routeTable) virtualHost(host string) *vhost {
	host = strings.ToLower(host)
	if vh, ok := rt.exact[host]; ok {
		return vh
	}
	var best *vhost
	bestLen, bestKind := -1, 3
	for _, vh := range rt.vhosts {
		for _, d := range vh.domains {
			kind, n := 3, 0
			switch {
			case d == "*":
				kind, n = 2, 0
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, strings.ToLower(d[1:])) && len(host) > len(d)-1:
				kind, n = 0, len(d)
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, strings.ToLower(d[:len(d)-1])) && len(host) > len(d)-1:
				kind, n = 1, len(d)
			default:
				continue
			}
			if kind < bestKind || kind == bestKind && n > bestLen {
				best, bestKind, bestLen = vh, kind, n
			}
		}
	}
	return best
}

// match returns the first route whose match holds: routes are tried in order.
func (vh *vhost) match(r *http.Request) *compiledRoute {
	for _, cr := range vh.routes {
		if cr.match.matches(r) {
			return cr
		}
	}
	return nil
}

func (m *routeMatch) matches(r *http.Request) bool {
	path := r.URL.Path
	if r.URL.RawPath != "" {
		path = r.URL.RawPath
	}
	switch {
	case m.regex != nil:
		if !m.regex.MatchString(path) {
			return false
		}
	case m.hasPath:
		if !equalFold(path, m.path, m.caseSensitive) {
			return false
		}
	default:
		if len(path) < len(m.prefix) || !equalFold(path[:len(m.prefix)], m.prefix, m.caseSensitive) {
			return false
		}
		if m.sepPrefix && len(path) > len(m.prefix) && path[len(m.prefix)] != '/' {
			return false // /api matches /api and /api/x, not /apix
		}
	}
	for _, h := range m.headers {
		if !h.matches(r) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := r.URL.Query()
		for _, qm := range m.query {
			vs, ok := q[qm.name]
			if !ok {
				return false
			}
			if qm.str != nil && !qm.str.matches(vs[0]) {
				return false
			}
		}
	}
	return true
}

func equalFold(a, b string, caseSensitive bool) bool {
	if caseSensitive {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// matches applies a header matcher; several values are joined with "," as
// Envoy does before matching.
func (h *headerMatch) matches(r *http.Request) bool {
	var v string
	var ok bool
	switch h.name {
	case ":method":
		v, ok = r.Method, true
	case ":authority", "host":
		v, ok = r.Host, true
	case ":path":
		v, ok = r.URL.RequestURI(), true
	case ":scheme":
		v, ok = "http", true
	default:
		vs := r.Header.Values(h.name)
		ok = len(vs) > 0
		v = strings.Join(vs, ",")
	}
	// A missing header matches only a presence matcher, unless it is read as
	// empty (Envoy's HeaderUtility::matchHeaders).
	if !ok && !h.missingEmpty {
		if h.str != nil {
			return false
		}
		if h.invert {
			return h.present
		}
		return !h.present
	}
	var res bool
	switch {
	case h.str != nil:
		res = h.str.matches(v)
	default:
		res = ok == h.present
	}
	return res != h.invert
}

func (s *stringMatch) matches(v string) bool {
	cmp := func(a, b string) bool {
		if s.ignoreCase {
			return strings.EqualFold(a, b)
		}
		return a == b
	}
	switch {
	case s.exact != nil:
		return cmp(v, *s.exact)
	case s.prefix != nil:
		return len(v) >= len(*s.prefix) && cmp(v[:len(*s.prefix)], *s.prefix)
	case s.suffix != nil:
		return len(v) >= len(*s.suffix) && cmp(v[len(v)-len(*s.suffix):], *s.suffix)
	case s.contains != nil:
		if s.ignoreCase {
			return strings.Contains(strings.ToLower(v), strings.ToLower(*s.contains))
		}
		return strings.Contains(v, *s.contains)
	case s.regex != nil:
		return s.regex.MatchString(v)
	}
	return false
}

// pickCluster chooses the route's cluster; weighted clusters are drawn once
// per request, so retries stay on the drawn cluster as in Envoy.
func (cr *compiledRoute) pickCluster(rnd func() uint64) string {
	if cr.cluster != "" {
		return cr.cluster
	}
	n := rnd() % cr.total
	for _, c := range cr.weighted {
		if n < c.weight {
			return c.name
		}
		n -= c.weight
	}
	return cr.weighted[len(cr.weighted)-1].name
}
