package sidecar

import (
	"fmt"
	"net/http"
	"sort"

	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
)

const rbacFilterName = "envoy.filters.http.rbac"

// rbacConf is one compiled RBAC filter: an ALLOW or DENY action over named policies.
type rbacConf struct {
	deny     bool
	policies []*rbacPolicy
}

type rbacPolicy struct {
	name        string
	permissions []*rbacconfig.Permission
	principals  []*rbacconfig.Principal
	// compiled string and header matchers, keyed by the proto they came from
	strs    map[any]*stringMatch
	headers map[*route.HeaderMatcher]*headerMatch
}

func compileRBACFilters(fs []*hcm.HttpFilter) ([]*rbacConf, error) {
	var out []*rbacConf
	for _, f := range fs {
		if f.GetName() != rbacFilterName {
			continue
		}
		r := &rbacfilter.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
			return nil, err
		}
		rc, err := compileRBACRules(r.GetRules())
		if err != nil {
			return nil, err
		}
		if rc != nil {
			out = append(out, rc)
		}
	}
	return out, nil
}

// networkRBACName is the network filter of an AuthorizationPolicy on TCP
// chains (istiod's builder puts it before tcp_proxy on inbound chains).
const networkRBACName = "envoy.filters.network.rbac"

// compileNetworkRBAC compiles the network RBAC filter: the same rules as
// the HTTP filter's, judged once per connection on what a connection has
// (the peer's principal, ports); HTTP-only matchers (headers, paths) never
// match there, as in Envoy's network RBAC (rbac_filter.cc, the matchers'
// headers are empty). stat_prefix and shadow rules only count.
func compileNetworkRBAC(r *netrbac.RBAC) (*rbacConf, error) {
	if r.GetMatcher() != nil || r.GetShadowMatcher() != nil {
		return nil, fmt.Errorf("%s: matcher is not supported (rules are)", networkRBACName)
	}
	if r.GetEnforcementType() != netrbac.RBAC_ONE_TIME_ON_FIRST_BYTE {
		return nil, fmt.Errorf("%s: enforcement_type %s is not supported", networkRBACName, r.GetEnforcementType())
	}
	return compileRBACRules(r.GetRules())
}

// compileRBACRules compiles one RBAC rule set; nil rules let everything
// through and give nil.
func compileRBACRules(rules *rbacconfig.RBAC) (*rbacConf, error) {
	{
		if rules == nil {
			return nil, nil
		}
		rc := &rbacConf{}
		switch rules.GetAction() {
		case rbacconfig.RBAC_ALLOW:
		case rbacconfig.RBAC_DENY:
			rc.deny = true
		default:
			return nil, fmt.Errorf("rbac action %s is not supported", rules.GetAction())
		}
		names := make([]string, 0, len(rules.GetPolicies()))
		for n := range rules.GetPolicies() {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := rules.GetPolicies()[n]
			rp := &rbacPolicy{name: n, permissions: p.GetPermissions(), principals: p.GetPrincipals(), strs: map[any]*stringMatch{}, headers: map[*route.HeaderMatcher]*headerMatch{}}
			if err := rp.compile(); err != nil {
				return nil, fmt.Errorf("rbac policy %s: %w", n, err)
			}
			rc.policies = append(rc.policies, rp)
		}
		return rc, nil
	}
}

// compile walks the policy once so that bad regexes NACK the listener.
func (p *rbacPolicy) compile() error {
	var walkPerm func(*rbacconfig.Permission) error
	var walkPrin func(*rbacconfig.Principal) error
	walkPerm = func(x *rbacconfig.Permission) error {
		switch r := x.GetRule().(type) {
		case *rbacconfig.Permission_AndRules:
			for _, c := range r.AndRules.GetRules() {
				if err := walkPerm(c); err != nil {
					return err
				}
			}
		case *rbacconfig.Permission_OrRules:
			for _, c := range r.OrRules.GetRules() {
				if err := walkPerm(c); err != nil {
					return err
				}
			}
		case *rbacconfig.Permission_NotRule:
			return walkPerm(r.NotRule)
		case *rbacconfig.Permission_UrlPath:
			sm, err := compileStringMatch(r.UrlPath.GetPath())
			if err != nil {
				return err
			}
			p.strs[r.UrlPath] = sm
		case *rbacconfig.Permission_Header:
			if err := p.compileHeader(r.Header); err != nil {
				return err
			}
		case *rbacconfig.Permission_Any:
		default:
			return fmt.Errorf("permission %T is not supported", r)
		}
		return nil
	}
	walkPrin = func(x *rbacconfig.Principal) error {
		switch r := x.GetIdentifier().(type) {
		case *rbacconfig.Principal_AndIds:
			for _, c := range r.AndIds.GetIds() {
				if err := walkPrin(c); err != nil {
					return err
				}
			}
		case *rbacconfig.Principal_OrIds:
			for _, c := range r.OrIds.GetIds() {
				if err := walkPrin(c); err != nil {
					return err
				}
			}
		case *rbacconfig.Principal_NotId:
			return walkPrin(r.NotId)
		case *rbacconfig.Principal_Authenticated_:
			if m := r.Authenticated.GetPrincipalName(); m != nil {
				sm, err := compileStringMatch(m)
				if err != nil {
					return err
				}
				p.strs[r.Authenticated] = sm
			}
		case *rbacconfig.Principal_Header:
			if err := p.compileHeader(r.Header); err != nil {
				return err
			}
		case *rbacconfig.Principal_Any:
		default:
			return fmt.Errorf("principal %T is not supported", r)
		}
		return nil
	}
	for _, x := range p.permissions {
		if err := walkPerm(x); err != nil {
			return err
		}
	}
	for _, x := range p.principals {
		if err := walkPrin(x); err != nil {
			return err
		}
	}
	return nil
}

// rbacInput is what a policy is judged on.
type rbacInput struct {
	r         *http.Request
	principal string // the peer's SPIFFE ID from mTLS, "" for plaintext
}

// allowed applies the chain's RBAC filters in order, as Envoy runs them:
// a DENY filter refuses a request any of its policies matches; an ALLOW
// filter refuses one none of its policies matches.
func allowed(filters []*rbacConf, in rbacInput) bool {
	for _, f := range filters {
		matched := false
		for _, p := range f.policies {
			if p.matches(in) {
				matched = true
				break
			}
		}
		if f.deny == matched {
			return false
		}
	}
	return true
}

// matches: any permission and any principal (rbac.proto Policy).
func (p *rbacPolicy) matches(in rbacInput) bool {
	return anyOf(len(p.permissions), func(i int) bool { return p.perm(p.permissions[i], in) }) &&
		anyOf(len(p.principals), func(i int) bool { return p.prin(p.principals[i], in) })
}

func anyOf(n int, f func(int) bool) bool {
	for i := 0; i < n; i++ {
		if f(i) {
			return true
		}
	}
	return false
}

func allOf(n int, f func(int) bool) bool {
	for i := 0; i < n; i++ {
		if !f(i) {
			return false
		}
	}
	return true
}

func (p *rbacPolicy) perm(x *rbacconfig.Permission, in rbacInput) bool {
	switch r := x.GetRule().(type) {
	case *rbacconfig.Permission_Any:
		return r.Any
	case *rbacconfig.Permission_AndRules:
		rs := r.AndRules.GetRules()
		return allOf(len(rs), func(i int) bool { return p.perm(rs[i], in) })
	case *rbacconfig.Permission_OrRules:
		rs := r.OrRules.GetRules()
		return anyOf(len(rs), func(i int) bool { return p.perm(rs[i], in) })
	case *rbacconfig.Permission_NotRule:
		return !p.perm(r.NotRule, in)
	case *rbacconfig.Permission_UrlPath:
		// url_path matches the path without the query (path_matcher.proto);
		// a connection (network RBAC) has none.
		return in.r != nil && p.strs[r.UrlPath].matches(in.r.URL.Path)
	case *rbacconfig.Permission_Header:
		return in.r != nil && p.headers[r.Header].matches(in.r)
	}
	return false
}

func (p *rbacPolicy) prin(x *rbacconfig.Principal, in rbacInput) bool {
	switch r := x.GetIdentifier().(type) {
	case *rbacconfig.Principal_Any:
		return r.Any
	case *rbacconfig.Principal_AndIds:
		ids := r.AndIds.GetIds()
		return allOf(len(ids), func(i int) bool { return p.prin(ids[i], in) })
	case *rbacconfig.Principal_OrIds:
		ids := r.OrIds.GetIds()
		return anyOf(len(ids), func(i int) bool { return p.prin(ids[i], in) })
	case *rbacconfig.Principal_NotId:
		return !p.prin(r.NotId, in)
	case *rbacconfig.Principal_Authenticated_:
		// Only a peer that presented a certificate is authenticated.
		if in.principal == "" {
			return false
		}
		sm := p.strs[r.Authenticated]
		return sm == nil || sm.matches(in.principal)
	case *rbacconfig.Principal_Header:
		return in.r != nil && p.headers[r.Header].matches(in.r)
	}
	return false
}

// compileHeader compiles an RBAC header matcher with the routes' own
// (HeaderUtility::matchHeaders semantics: invert_match, present_match,
// treat_missing_header_as_empty), refusing kinds it cannot evaluate.
func (p *rbacPolicy) compileHeader(h *route.HeaderMatcher) error {
	hm, err := compileHeaderMatch(h)
	if err != nil {
		return fmt.Errorf("RBAC: %w", err)
	}
	p.headers[h] = &hm
	return nil
}
