package istionames

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The cases follow istiod's own: pilot/pkg/model/config_test.go
// TestResolveShortnameToFQDN (with Domain cluster.local).
func TestResolveHostCompletesOnlyNamesWithoutADot(t *testing.T) {
	for _, tc := range []struct{ host, ns, want string }{
		{"payment", "default", "payment.default.svc.cluster.local"},
		{"payment", "other", "payment.other.svc.cluster.local"},
		{"payment", "", "payment.svc.cluster.local"},
		{"payment.default", "default", "payment.default"},
		{"payment.default.svc", "default", "payment.default.svc"},
		{"payment.default.svc.cluster.local", "other", "payment.default.svc.cluster.local"},
		{"*", "default", "*"},
		{"*.default.svc.cluster.local", "other", "*.default.svc.cluster.local"},
		{"*.default", "default", "*.default"},
		{"42.185.131.210", "default", "42.185.131.210"},
		{"2a00:4000::614", "default", "2a00:4000::614"},
		{"", "default", ""},
	} {
		assert.Equal(t, Host(tc.want), ResolveHost(tc.host, tc.ns), "%q in %s", tc.host, tc.ns)
	}
}

// The cases follow pkg/config/host/name_test.go TestNameMatches and
// TestNameSubsetOf; subset is whether a is covered by b.
func TestHostMatchesAndSubsetOf(t *testing.T) {
	for _, tc := range []struct {
		a, b            Host
		matches, subset bool
	}{
		{"", "", true, true},
		{"", "foo.com", false, false},
		{"foo.com", "foo.com", true, true},
		{"foo.com", "bar.com", false, false},
		{"bar.foo.com", "foo.com", false, false},
		{"foo.com", "*.com", true, true},
		{"*.com", "foo.com", true, false},
		{"bar.foo.com", "*.foo.com", true, true},
		{"foo.com", "*.foo.com", false, false},
		{"*.foo.com", "foo.com", false, false},
		{"foo.com", "*", true, true},
		{"*", "foo.com", true, false},
		{"*", "*", true, true},
		{"*.com", "*", true, true},
		{"*", "*.com", true, false},
		{"*.foo.com", "*.com", true, true},
		{"*.com", "*.foo.com", true, false},
		{"baz", "*.foo.bar.baz", false, false},
		{"a.facebook.com", "*.facebook.COM", false, false},
	} {
		assert.Equal(t, tc.matches, tc.a.Matches(tc.b), "%q.Matches(%q)", tc.a, tc.b)
		assert.Equal(t, tc.matches, tc.b.Matches(tc.a), "%q.Matches(%q)", tc.b, tc.a)
		assert.Equal(t, tc.subset, tc.a.SubsetOf(tc.b), "%q.SubsetOf(%q)", tc.a, tc.b)
	}
}

func TestNamesAndCoversService(t *testing.T) {
	for _, tc := range []struct {
		host, configNs string
		names, covers  bool
	}{
		{"payment", "default", true, false},
		{"payment", "other", false, false}, // payment.other.svc.cluster.local
		{"payment.default.svc.cluster.local", "other", true, false},
		{"payment.default", "default", false, false},
		{"payment.default.svc", "default", false, false},
		{"payment.default.svc.cluster.local.", "default", false, false},
		{"order", "default", false, false},
		{"*", "other", false, true},
		{"*.default.svc.cluster.local", "other", false, true},
		{"*.svc.cluster.local", "default", false, true},
		{"*.other.svc.cluster.local", "default", false, false},
		{"*.default", "default", false, false},
		{"*ment.default.svc.cluster.local", "default", false, true}, // a plain suffix, as Istio compares it
		{"", "default", false, false},
	} {
		assert.Equal(t, tc.names, NamesService(tc.host, tc.configNs, "payment", "default"), "names: %q in %s", tc.host, tc.configNs)
		assert.Equal(t, tc.covers, CoversService(tc.host, tc.configNs, "payment", "default"), "covers: %q in %s", tc.host, tc.configNs)
	}
}

func TestParseServiceHost(t *testing.T) {
	name, ns, ok := ParseServiceHost(ResolveHost("payment", "default"))
	assert.True(t, ok)
	assert.Equal(t, []string{"payment", "default"}, []string{name, ns})
	for _, bad := range []Host{"payment.default", "payment.svc.cluster.local", "a.b.c.svc.cluster.local", "*.default.svc.cluster.local", ".default.svc.cluster.local", "payment.default.svc.example.com"} {
		_, _, ok := ParseServiceHost(bad)
		assert.False(t, ok, bad)
	}
}

// A pod reaches a Service by any name its DNS search path completes.
func TestDNSNamesFollowsThePodSearchPath(t *testing.T) {
	for _, q := range []string{"payment", "payment.default", "payment.default.svc", "payment.default.svc.cluster.local", "payment.default.svc.cluster.local."} {
		assert.True(t, DNSNames(q, "default", "payment", "default"), q)
	}
	for _, q := range []string{"pay", "payment.other", "payment.default.svc.cluster", "payment.default.svc.example.com", "", "*"} {
		assert.False(t, DNSNames(q, "default", "payment", "default"), q)
	}
	assert.False(t, DNSNames("payment", "other", "payment", "default"), "a short name means the client's own namespace")
	assert.True(t, DNSNames("payment.default", "other", "payment", "default"))
}
