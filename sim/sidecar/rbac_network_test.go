package sidecar

import (
	"testing"

	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The network RBAC istiod puts before tcp_proxy on an inbound chain judges
// a connection by its peer's principal; an HTTP-only matcher (a path, a
// header) never matches a connection, as in Envoy's network RBAC, so an
// ALLOW of a path lets no connection through and a DENY of one stops none.
func TestNetworkRBACJudgesConnections(t *testing.T) {
	order := &rbacconfig.Principal{Identifier: &rbacconfig.Principal_Authenticated_{Authenticated: &rbacconfig.Principal_Authenticated{
		PrincipalName: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "spiffe://cluster.local/ns/default/sa/order"}}}}}
	anyPerm := &rbacconfig.Permission{Rule: &rbacconfig.Permission_Any{Any: true}}
	pathPerm := &rbacconfig.Permission{Rule: &rbacconfig.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "/pay"}}}}}}
	headerPrin := &rbacconfig.Principal{Identifier: &rbacconfig.Principal_Header{Header: &route.HeaderMatcher{Name: "x", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}}}
	rules := func(action rbacconfig.RBAC_Action, perm *rbacconfig.Permission, prin *rbacconfig.Principal) *rbacConf {
		rc, err := compileNetworkRBAC(&netrbac.RBAC{StatPrefix: "tcp.", Rules: &rbacconfig.RBAC{Action: action, Policies: map[string]*rbacconfig.Policy{
			"ns[default]-policy[p]-rule[0]": {Permissions: []*rbacconfig.Permission{perm}, Principals: []*rbacconfig.Principal{prin}}}}})
		require.NoError(t, err)
		return rc
	}
	allowOrder := []*rbacConf{rules(rbacconfig.RBAC_ALLOW, anyPerm, order)}
	assert.True(t, allowed(allowOrder, rbacInput{principal: "spiffe://cluster.local/ns/default/sa/order"}))
	assert.False(t, allowed(allowOrder, rbacInput{principal: "spiffe://cluster.local/ns/default/sa/legacy"}))
	assert.False(t, allowed(allowOrder, rbacInput{}), "plaintext has no principal")

	assert.False(t, allowed([]*rbacConf{rules(rbacconfig.RBAC_ALLOW, pathPerm, order)}, rbacInput{principal: "spiffe://cluster.local/ns/default/sa/order"}))
	assert.True(t, allowed([]*rbacConf{rules(rbacconfig.RBAC_DENY, anyPerm, headerPrin)}, rbacInput{principal: "spiffe://cluster.local/ns/default/sa/order"}))

	_, err := compileNetworkRBAC(&netrbac.RBAC{EnforcementType: netrbac.RBAC_CONTINUOUS})
	assert.ErrorContains(t, err, "enforcement_type CONTINUOUS")
}
