package registry

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counter hands out 10.0.0.1, 10.0.0.2, ... in call order.
func counter() func() (netip.Addr, error) {
	next := netip.MustParseAddr("10.0.0.0")
	return func() (netip.Addr, error) {
		next = next.Next()
		return next, nil
	}
}

func TestWithDefaults(t *testing.T) {
	topo := WithDefaults(Topology{Services: []Service{
		{Name: "a", Versions: []Version{{Name: "v1"}}},
		{Name: "b", Port: 9080, TargetPort: 9090, Path: "/x", Versions: []Version{{Name: "v1", Replicas: 3, ErrorStatus: 500}}},
	}})
	assert.Equal(t, "default", topo.Namespace)
	a, b := topo.Services[0], topo.Services[1]
	assert.Equal(t, 80, a.Port)
	assert.Equal(t, 8080, a.TargetPort)
	assert.Equal(t, "/a", a.Path)
	assert.Equal(t, 1, a.Versions[0].Replicas)
	assert.Equal(t, 503, a.Versions[0].ErrorStatus)
	// Set values are kept.
	assert.Equal(t, 9080, b.Port)
	assert.Equal(t, 9090, b.TargetPort)
	assert.Equal(t, "/x", b.Path)
	assert.Equal(t, 3, b.Versions[0].Replicas)
	assert.Equal(t, 500, b.Versions[0].ErrorStatus)
}

func TestWithDefaultsDoesNotMutateInput(t *testing.T) {
	in := Topology{Services: []Service{{Name: "a", Versions: []Version{{Name: "v1"}}}}}
	_ = WithDefaults(in)
	assert.Equal(t, 0, in.Services[0].Port)
	assert.Equal(t, 0, in.Services[0].Versions[0].Replicas)
}

func TestNewDefaultTopologyPods(t *testing.T) {
	reg, err := New(DefaultTopology(), counter())
	require.NoError(t, err)
	require.Equal(t, "default", reg.Namespace)

	type want struct {
		name, service, version, workload, ip string
	}
	// Pods are created service by service, version by version, replica by
	// replica, each taking the next address.
	wants := []want{
		{"order-v1-0", "order", "v1", "order-v1", "10.0.0.1"},
		{"order-v1-1", "order", "v1", "order-v1", "10.0.0.2"},
		{"payment-v1-0", "payment", "v1", "payment-v1", "10.0.0.3"},
		{"payment-v1-1", "payment", "v1", "payment-v1", "10.0.0.4"},
		{"payment-v2-0", "payment", "v2", "payment-v2", "10.0.0.5"},
	}
	require.Len(t, reg.Pods, len(wants))
	for i, w := range wants {
		p := reg.Pods[i]
		t.Run(w.name, func(t *testing.T) {
			assert.Equal(t, w.name, p.Name)
			assert.Equal(t, "default", p.Namespace)
			assert.Equal(t, w.service, p.Service)
			assert.Equal(t, w.version, p.Version)
			assert.Equal(t, w.workload, p.Workload)
			assert.Equal(t, map[string]string{"app": w.service, "version": w.version}, p.Labels)
			assert.Equal(t, w.ip, p.IP.String())
			assert.Equal(t, 8080, p.Port, "EDS endpoints use the targetPort")
			assert.Equal(t, w.service, p.ServiceAccount)
			// Istio's node id: type~ip~pod.namespace~namespace.svc.cluster.local
			// (pilot/pkg/model/context.go ParseServiceNodeWithMetadata splits on "~" into 4 parts).
			assert.Equal(t, "sidecar~"+w.ip+"~"+w.name+".default~default.svc.cluster.local", p.NodeID())
			assert.Len(t, strings.Split(p.NodeID(), "~"), 4)
		})
	}
}

func TestNewVersionLabelsExtendButDoNotOverrideAppVersion(t *testing.T) {
	reg, err := New(Topology{Services: []Service{{Name: "a", Versions: []Version{{Name: "v1", Labels: map[string]string{"track": "canary"}}}}}}, counter())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"app": "a", "version": "v1", "track": "canary"}, reg.Pods[0].Labels)
}

func TestNewPropagatesAllocError(t *testing.T) {
	boom := errors.New("out of addresses")
	n := 0
	_, err := New(DefaultTopology(), func() (netip.Addr, error) {
		n++
		if n == 3 {
			return netip.Addr{}, boom
		}
		return netip.MustParseAddr("10.0.0.1"), nil
	})
	require.ErrorIs(t, err, boom)
}

func TestServiceLookupByEveryName(t *testing.T) {
	reg, err := New(DefaultTopology(), counter())
	require.NoError(t, err)
	for _, host := range []string{
		"payment", "payment.default", "payment.default.svc",
		"payment.default.svc.cluster.local", "payment.default.svc.cluster.local.",
	} {
		s, ok := reg.Service(host)
		require.True(t, ok, host)
		assert.Equal(t, "payment", s.Name, host)
		assert.Equal(t, "payment.default.svc.cluster.local", s.FQDN())
	}
	for _, host := range []string{"pay", "payment.other", "payment.default.svc.cluster", "payment.default.svc.example.com", ""} {
		_, ok := reg.Service(host)
		assert.False(t, ok, host)
	}
}

// Istio config names a service by the FQDN or, in its own namespace, the
// short name; the names only DNS completes name none (istionames.ResolveHost).
func TestLookupResolvesHostsAsIstiod(t *testing.T) {
	reg, err := New(DefaultTopology(), counter())
	require.NoError(t, err)
	for _, tc := range []struct{ host, ns string }{{"payment", "default"}, {"payment.default.svc.cluster.local", "other"}} {
		s, ok := reg.Lookup(tc.host, tc.ns)
		require.True(t, ok, tc.host)
		assert.Equal(t, "payment", s.Name)
	}
	for _, tc := range []struct{ host, ns string }{
		{"payment", "other"}, {"payment.default", "default"}, {"payment.default.svc", "default"},
		{"*.default.svc.cluster.local", "default"}, {"", "default"},
	} {
		_, ok := reg.Lookup(tc.host, tc.ns)
		assert.False(t, ok, "%q in %s", tc.host, tc.ns)
	}
}

func TestPodsOfSortedAndFiltered(t *testing.T) {
	reg, err := New(DefaultTopology(), counter())
	require.NoError(t, err)
	// Reverse the registry's order: PodsOf must sort by name.
	for i, j := 0, len(reg.Pods)-1; i < j; i, j = i+1, j-1 {
		reg.Pods[i], reg.Pods[j] = reg.Pods[j], reg.Pods[i]
	}
	var names []string
	for _, p := range reg.PodsOf("payment") {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"payment-v1-0", "payment-v1-1", "payment-v2-0"}, names)
	assert.Empty(t, reg.PodsOf("nope"))

	p, ok := reg.Pod("order-v1-1")
	require.True(t, ok)
	assert.Equal(t, "order", p.Service)
	_, ok = reg.Pod("order-v1-9")
	assert.False(t, ok)
}

func TestReadiness(t *testing.T) {
	reg, err := New(DefaultTopology(), counter())
	require.NoError(t, err)
	assert.True(t, reg.Ready("payment-v1-0"), "pods start ready")
	reg.SetReady("payment-v1-0", false)
	assert.False(t, reg.Ready("payment-v1-0"))
	assert.True(t, reg.Ready("payment-v1-1"), "readiness is per pod")
	reg.SetReady("payment-v1-0", true)
	assert.True(t, reg.Ready("payment-v1-0"))
}

func TestSelects(t *testing.T) {
	labels := map[string]string{"app": "payment", "version": "v1"}
	assert.True(t, Selects(nil, labels), "an empty selector selects everything")
	assert.True(t, Selects(map[string]string{"version": "v1"}, labels))
	assert.True(t, Selects(map[string]string{"app": "payment", "version": "v1"}, labels))
	assert.False(t, Selects(map[string]string{"version": "v2"}, labels))
	assert.False(t, Selects(map[string]string{"track": "canary"}, labels))
}

// A selector key must be present on the pod: Istio's labels.Instance.SubsetOf
// (pkg/config/labels/instance.go) requires `v2, ok := that[k]; ok && v1 == v2`,
// as Kubernetes' Equals requirement does.
func TestSelectsMissingLabelIsNotEmptyValue(t *testing.T) {
	labels := map[string]string{"app": "payment", "version": "v1"}
	assert.False(t, Selects(map[string]string{"track": ""}, labels), "a missing label does not equal an empty value")
}

func TestCallsOfVersion(t *testing.T) {
	// Bookinfo's reviews: v1 calls nothing, v2 and v3 call ratings.
	reviews := Service{Name: "reviews", Calls: []string{"ratings"}, Versions: []Version{
		{Name: "v1", Calls: []string{}}, {Name: "v2"}, {Name: "v3", Calls: []string{"ratings", "details"}},
	}}
	assert.Empty(t, reviews.CallsOf("v1"))
	assert.Equal(t, []string{"ratings"}, reviews.CallsOf("v2"), "no calls key keeps the service's")
	assert.Equal(t, []string{"ratings", "details"}, reviews.CallsOf("v3"))
	assert.Equal(t, []string{"ratings", "details"}, reviews.AllCalls())
	// A service whose every version overrides its calls calls only theirs.
	only := Service{Name: "x", Calls: []string{"a"}, Versions: []Version{{Name: "v1", Calls: []string{"b"}}}}
	assert.Equal(t, []string{"b"}, only.AllCalls())
}

func TestOnCalleeErrorOfVersion(t *testing.T) {
	s := Service{Name: "productpage", OnCalleeError: "degrade", Versions: []Version{{Name: "v1"}, {Name: "v2", OnCalleeError: "fail"}}}
	assert.Equal(t, "degrade", s.OnCalleeErrorOf("v1"))
	assert.Equal(t, "fail", s.OnCalleeErrorOf("v2"))
	assert.Equal(t, "", Service{}.OnCalleeErrorOf("v1"), "unset: fakesvc's default, fail")
}

// A selecting Service (the per-version Services GAMMA canaries route to)
// serves the selected version's pods on the selected service's ports, and
// has none of its own.
func TestSelectingServiceTakesTheVersionsPods(t *testing.T) {
	topo := DefaultTopology()
	topo.Services[1].Port, topo.Services[1].TargetPort = 8000, 9000
	topo.Services = append(topo.Services,
		Service{Name: "payment-v2", Selects: &Selector{Service: "payment", Version: "v2"}},
		Service{Name: "payment-all", Selects: &Selector{Service: "payment"}})
	reg, err := New(topo, counter())
	require.NoError(t, err)
	assert.Len(t, reg.Pods, 5, "a selecting Service adds no pods")
	var names []string
	for _, p := range reg.PodsOf("payment-v2") {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"payment-v2-0"}, names)
	assert.Len(t, reg.PodsOf("payment-all"), 3)
	s, ok := reg.Service("payment-v2")
	require.True(t, ok)
	assert.Equal(t, 8000, s.Port)
	assert.Equal(t, 9000, s.TargetPort)
	assert.Equal(t, "/pay", s.Path)
	assert.Equal(t, map[string]string{"app": "payment", "version": "v2"}, s.SelectorLabels())
	assert.Equal(t, map[string]string{"app": "payment"}, reg.Services[1].SelectorLabels())

	// Versions declared on a selecting Service are kept for a validator
	// to refuse, and make no pods.
	topo.Services[3].Versions = []Version{{Name: "v9"}}
	assert.Equal(t, []Version{{Name: "v9", Replicas: 1, ErrorStatus: 503}}, WithDefaults(topo).Services[3].Versions)
	reg, err = New(topo, counter())
	require.NoError(t, err)
	assert.Len(t, reg.Pods, 5, "a selecting Service adds no pods")
}
