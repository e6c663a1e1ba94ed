package derive

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// request is what a derived load can make the client send to a service:
// the service's path (one per service in a topology) and the headers the
// sample app passes on to its calls.
type request struct {
	path    string
	headers map[string]string
	// method is the request's method; "" is callMethod.
	method string
}

// methodOr is the request's method.
func (r request) methodOr() string {
	if r.method == "" {
		return callMethod
	}
	return r.method
}

// onto sends l's requests as r: its headers and method.
func (r request) onto(l *Load) {
	l.Headers, l.Method = r.headers, variantMethod(r.methodOr())
}

// variant is a variant of the requests r.
func (r request) variant(name string, weight int) Variant {
	return Variant{Name: name, Weight: weight, Headers: r.headers, Method: variantMethod(r.methodOr())}
}

// propagatedHeaders are the request headers fakesvc passes on to the calls
// it makes (fakesvc.propagated), so the only ones a route's header match
// can see on the client's call.
var propagatedHeaders = []string{"end-user", "x-meshbench-user"}

// callMethod is the method of the derived loads' requests (load.method's
// default) and so of the sample app's calls, which carry the method of the
// request they serve (fakesvc Server.ServeHTTP). Only a route's method
// match (satisfy) and the authorization checks of a rule's methods
// (authzOtherMethod) send another.
const callMethod = "POST"

// satisfy is a request that a match clause matches, or why there is none.
// Only uri (exact, prefix), the propagated headers (exact, prefix) and
// the method can be sent; a clause on anything else cannot be exercised.
func satisfy(m *networking.HTTPMatchRequest, path string) (request, string) {
	r := request{path: path, headers: map[string]string{}}
	switch {
	case m.GetQueryParams() != nil, m.GetAuthority() != nil, m.GetScheme() != nil,
		m.GetPort() != 0, m.GetSourceLabels() != nil, m.GetSourceNamespace() != "", len(m.GetGateways()) > 0:
		return r, "the match names what the sample client cannot send (only uri and the end-user or x-meshbench-user header reach a call)"
	}
	if mm := m.GetMethod(); mm != nil {
		// The load's method reaches the route's caller: the sample app
		// calls on with the method it was called with (fakesvc).
		// Never HEAD: its answers have no body to tell the version by.
		methods := slices.DeleteFunc(slices.Clone(sendMethods), func(m string) bool { return m == "HEAD" })
		i := slices.IndexFunc(methods, func(method string) bool { return stringMatch(mm, method, false) == matched })
		if i < 0 {
			return r, "its method match takes none of " + strings.Join(methods, ", ")
		}
		r.method = methods[i]
	}
	if u := m.GetUri(); u != nil {
		switch {
		case u.GetExact() != "":
			r.path = u.GetExact()
		case u.GetPrefix() != "":
			r.path = u.GetPrefix()
			if !strings.HasPrefix(r.path, "/") {
				return r, fmt.Sprintf("uri prefix %q does not start with /", r.path)
			}
		default:
			return r, "a uri regex match cannot be turned into a path here"
		}
	}
	for name, v := range m.GetHeaders() {
		name = strings.ToLower(name)
		if !slices.Contains(propagatedHeaders, name) {
			return r, fmt.Sprintf("header %s is not passed on by the sample app to its calls (only %s are)", name, strings.Join(propagatedHeaders, ", "))
		}
		switch {
		case v.GetExact() != "":
			r.headers[name] = v.GetExact()
		case v.GetPrefix() != "":
			r.headers[name] = v.GetPrefix() + "x"
		default:
			return r, fmt.Sprintf("header %s: only exact and prefix matches can be sent", name)
		}
	}
	return r, ""
}

// matchState says whether a route's matches take a request.
type matchState int

const (
	noMatch matchState = iota
	matched
	unknown // a condition the request cannot be judged against
)

// routeTakes reports whether an HTTP route of a VirtualService takes r.
func routeTakes(hr *networking.HTTPRoute, r request) matchState {
	if len(hr.GetMatch()) == 0 {
		return matched
	}
	out := noMatch
	for _, m := range hr.GetMatch() {
		switch clauseTakes(m, r) {
		case matched:
			return matched
		case unknown:
			out = unknown
		}
	}
	return out
}

// clauseTakes judges one match clause (all its conditions must hold).
func clauseTakes(m *networking.HTTPMatchRequest, r request) matchState {
	if m.GetAuthority() != nil || m.GetScheme() != nil ||
		m.GetPort() != 0 || m.GetSourceLabels() != nil || m.GetSourceNamespace() != "" || len(m.GetGateways()) > 0 {
		return unknown
	}
	if len(m.GetQueryParams()) > 0 {
		return noMatch // the sample app's calls carry no query
	}
	if m.GetMethod() != nil {
		if s := stringMatch(m.GetMethod(), r.methodOr(), false); s != matched {
			return s
		}
	}
	if u := m.GetUri(); u != nil {
		if s := stringMatch(u, r.path, m.GetIgnoreUriCase()); s != matched {
			return s
		}
	}
	for name, v := range m.GetHeaders() {
		if s := stringMatch(v, r.headers[strings.ToLower(name)], false); s != matched {
			return s
		}
	}
	for name, v := range m.GetWithoutHeaders() {
		if _, present := r.headers[strings.ToLower(name)]; present && stringMatch(v, r.headers[strings.ToLower(name)], false) == matched {
			return noMatch
		}
	}
	return matched
}

// stringMatch judges an Istio StringMatch; an unset one (a header's mere
// presence) matches a non-empty value.
func stringMatch(s *networking.StringMatch, v string, ignoreCase bool) matchState {
	if ignoreCase {
		v = strings.ToLower(v)
	}
	lower := func(x string) string {
		if ignoreCase {
			return strings.ToLower(x)
		}
		return x
	}
	ok := false
	switch {
	case s.GetExact() != "":
		ok = v == lower(s.GetExact())
	case s.GetPrefix() != "":
		ok = strings.HasPrefix(v, lower(s.GetPrefix()))
	case s.GetRegex() != "":
		re, err := regexp.Compile("^(?:" + s.GetRegex() + ")$")
		if err != nil {
			return unknown
		}
		ok = re.MatchString(v)
	default:
		ok = v != ""
	}
	if ok {
		return matched
	}
	return noMatch
}

// firstRouteTaking is the index of the first route that takes r, -1 when
// none does, and false when a route before it cannot be judged.
func firstRouteTaking(routes []*networking.HTTPRoute, r request) (int, bool) {
	for i, hr := range routes {
		switch routeTakes(hr, r) {
		case matched:
			return i, true
		case unknown:
			return -1, false
		}
	}
	return -1, true
}
