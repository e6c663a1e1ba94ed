package spec

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Istio's validation of PeerAuthentications and AuthorizationPolicies, and
// istioctl analyze's NoMatchingWorkloadsFound, one file per kind of
// problem; each error names its file, line and field.
func TestValidateSecurityErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		// ValidatePeerAuthentication; ComposePeerAuthentication's selection.
		{"security-peer-authentication.yaml", []wantError{
			{Line: 11, Field: "mesh[0].spec.portLevelMtls", Msg: "mesh/namespace peer authentication cannot have port level mTLS: portLevelMtls requires a selector"},
			{Line: 21, Field: "mesh[1].spec.portLevelMtls.80", Msg: "port 80 is not a container port of the pods the selector selects (targetPort 8080)"},
			{Line: 28, Field: "mesh[2].spec.selector.matchLabels", Msg: "selector app=billing selects no pod"},
			{Line: 36, Field: "mesh[3].spec.selector", Msg: "a PeerAuthentication with a selector in the root namespace istio-system applies to no workload: istiod ignores it"},
			{Line: 43, Field: "mesh[4].metadata.namespace", Msg: "PeerAuthentication default applies to no workload: no pod runs in namespace shop"},
			{Line: 53, Field: "mesh[5].spec.portLevelMtls", Msg: "port level mTLS, if defined, must have at least one element"},
		}},
		// ValidateAttribute, and principals written with spiffe://.
		{"security-authz-principals-when.yaml", []wantError{
			{Line: 17, Field: "mesh[0].spec.rules[0].from[0].source.principals[1]", Msg: `principal "spiffe://cluster.local/ns/default/sa/audit" must not start with spiffe://`},
			{Line: 19, Field: "mesh[0].spec.rules[0].when[0].key", Msg: `unknown attribute: source.ipp (did you mean "source.ip"?)`},
			{Line: 21, Field: "mesh[0].spec.rules[0].when[1].key", Msg: `when key "source.namespace" is not supported by meshbench`},
			{Line: 23, Field: "mesh[0].spec.rules[0].when[2].key", Msg: "bad key (request.headers[x-user): should have format a[b]"},
			{Line: 25, Field: "mesh[0].spec.rules[0].when[3]", Msg: "at least one of `values` or `notValues` must be set for key request.headers[x-team]"},
			{Line: 28, Field: "mesh[0].spec.rules[0].when[4].notValues", Msg: "notValues is not supported by meshbench"},
		}},
		// ValidateAuthorizationPolicy, NoMatchingWorkloadsFound,
		// ReferencedResourceNotFound, and fields meshbench would drop.
		{"security-authz-fields.yaml", []wantError{
			{Line: 9, Field: "mesh[0].spec", Msg: "DENY action without `rules` is meaningless"},
			{Line: 19, Field: "mesh[1].spec.selector.matchLabels", Msg: "selector app=billing selects no pod"},
			{Line: 27, Field: "mesh[2].spec.action", Msg: "action AUDIT is not supported by meshbench"},
			{Line: 31, Field: "mesh[2].spec.rules[0].from[0].source.notPrincipals", Msg: "notPrincipals is not supported by meshbench (it would be dropped; supported: principals, namespaces)"},
			{Line: 32, Field: "mesh[2].spec.rules[0].from[0].source.namespaces[0]", Msg: `namespace "shop" has no workloads`},
			{Line: 35, Field: "mesh[2].spec.rules[0].to[0].operation.hosts", Msg: "hosts is not supported by meshbench"},
			{Line: 36, Field: "mesh[2].spec.rules[0].to[0].operation.paths[0]", Msg: "empty value not allowed, found in Paths"},
			{Line: 37, Field: "mesh[2].spec.rules[0].to[1].operation", Msg: "`to.operation` must not be empty, found at rule 0"},
		}},
	})
}

// What Istio accepts and meshbench translates stays accepted; each case
// differs from a valid scenario in one place.
func TestValidateSecurityInline(t *testing.T) {
	const tail = "load: {target: order, rate: 100/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.99}\n"
	pa := func(ns, spec string) string {
		return "  - {apiVersion: security.istio.io/v1, kind: PeerAuthentication, metadata: {name: p, namespace: " + ns + "}, spec: " + spec + "}\n"
	}
	ap := func(ns, spec string) string {
		return "  - {apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: a, namespace: " + ns + "}, spec: " + spec + "}\n"
	}
	rule := func(r string) string {
		return ap("default", "{selector: {matchLabels: {app: payment}}, rules: ["+r+"]}")
	}
	for _, tc := range []struct {
		name, mesh, want string // want "" means valid
	}{
		{"mesh STRICT", pa("istio-system", "{mtls: {mode: STRICT}}"), ""},
		{"namespace PERMISSIVE", pa("default", "{mtls: {mode: PERMISSIVE}}"), ""},
		{"workload with a container port", pa("default", "{selector: {matchLabels: {app: payment, version: v2}}, mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}"), ""},
		{"workload UNSET inherits", pa("default", "{selector: {matchLabels: {app: order}}}"), ""},
		{"port 0", pa("default", "{selector: {matchLabels: {app: payment}}, portLevelMtls: {0: {mode: DISABLE}}}"), "mesh[0].spec.portLevelMtls.0: port must be in range 1..65535"},
		{"port level on a namespace policy", pa("default", "{portLevelMtls: {8080: {mode: DISABLE}}}"), "portLevelMtls requires a selector"},
		{"selector of a version label", pa("default", "{selector: {matchLabels: {version: v3}}, mtls: {mode: STRICT}}"), "selector version=v3 selects no pod"},

		{"allow nothing", ap("default", "{}"), ""},
		{"mesh-wide with a selector", ap("istio-system", "{selector: {matchLabels: {app: payment}}, action: DENY, rules: [{}]}"), ""},
		{"mesh-wide selecting nothing", ap("istio-system", "{selector: {matchLabels: {app: billing}}, rules: [{}]}"), "mesh[0].spec.selector.matchLabels: selector app=billing selects no pod"},
		{"principals with wildcards", rule(`{from: [{source: {principals: ["cluster.local/ns/default/sa/order", "*/sa/audit", "cluster.local/ns/default/*", "*"]}}]}`), ""},
		{"the gateway's identity", rule(`{from: [{source: {principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"], namespaces: [istio-system]}}]}`), ""},
		{"namespaces with a wildcard", rule(`{from: [{source: {namespaces: ["default", "team-*"]}}]}`), ""},
		{"methods and paths", rule(`{to: [{operation: {methods: [GET, POST], paths: ["/pay", "/pay/*", "*/refunds"]}}]}`), ""},
		{"header condition", rule(`{when: [{key: "request.headers[end-user]", values: ["mallory", "eve*"]}]}`), ""},
		{"empty from", rule(`{from: []}`), "mesh[0].spec.rules[0].from: `from` must not be empty, found at rule 0"},
		{"empty source", rule(`{from: [{source: {}}]}`), "`from.source` must not be empty, found at rule 0"},
		{"empty principal", rule(`{from: [{source: {principals: [""]}}]}`), "mesh[0].spec.rules[0].from[0].source.principals[0]: empty value not allowed, found in Principals"},
		{"serviceAccounts", rule(`{from: [{source: {serviceAccounts: [order]}}]}`), "serviceAccounts is not supported by meshbench"},
		{"ipBlocks", rule(`{from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]}`), "ipBlocks is not supported by meshbench"},
		{"ports", rule(`{to: [{operation: {ports: ["8080"]}}]}`), "ports is not supported by meshbench"},
		{"notPaths", rule(`{to: [{operation: {notPaths: ["/admin"]}}]}`), "notPaths is not supported by meshbench"},
		{"path template", rule(`{to: [{operation: {paths: ["/pay/{*}"]}}]}`), `path templates like "/pay/{*}" are not supported by meshbench`},
		{"request.auth.claims", rule(`{when: [{key: "request.auth.claims[iss]", values: ["x"]}]}`), `when key "request.auth.claims[iss]" is not supported by meshbench`},
		{"destination.labels is gone", rule(`{when: [{key: "destination.labels[app]", values: ["x"]}]}`), "unknown attribute: destination.labels[app]"},
		{"empty condition value", rule(`{when: [{key: "request.headers[x-a]", values: [""]}]}`), "mesh[0].spec.rules[0].when[0].values[0]: invalid `value` for `key` request.headers[x-a]: empty value not allowed"},
		{"CUSTOM", ap("default", "{action: CUSTOM, provider: {name: ext}, rules: [{}]}"), "action CUSTOM is not supported by meshbench"},
		{"provider without CUSTOM", ap("default", "{provider: {name: ext}}"), "`provider` must not be with non CUSTOM action, found ALLOW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: x\nmesh:\n" + tc.mesh + tail
			_, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(doc)}}, "x.yaml", "x.yaml")
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "x.yaml:3: "), "the error names file and line: %v", err)
		})
	}
}

// The catalog's security scenarios pass these checks, with the resources
// they are about.
func TestCatalogSecurityScenariosValidate(t *testing.T) {
	for _, c := range []struct {
		name     string
		pas, aps int
	}{
		{"mtls-strict-refuses-plaintext", 1, 0},
		{"mtls-permissive-migration", 0, 0},
		{"authz-only-order-may-pay", 0, 2},
		{"cert-rotation-under-load", 1, 0},
		{"expired-or-foreign-cert-refused", 3, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, err := catalogScenario(c.name)
			require.NoError(t, err)
			assert.Len(t, sc.Config.PeerAuthentications, c.pas)
			assert.Len(t, sc.Config.AuthorizationPolicies, c.aps)
		})
	}
}
