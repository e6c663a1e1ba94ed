package kind

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/registry"
)

// argsOf is the app's command line in the Deployment of service/version.
func argsOf(t *testing.T, reg *registry.Registry, service, version string) []any {
	t.Helper()
	s, ok := reg.Service(service)
	require.True(t, ok)
	for _, v := range s.Versions {
		if v.Name == version {
			d := deployment(reg, s, v, "app:x", "Never", 1)
			spec := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			return spec["containers"].([]any)[0].(map[string]any)["args"].([]any)
		}
	}
	t.Fatalf("no version %s of %s", version, service)
	return nil
}

func flagValue(args []any, name string) (string, bool) {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1].(string), true
		}
	}
	return "", false
}

// Each Deployment is one version: its fakesvc calls what that version calls.
func TestDeploymentCallsPerVersion(t *testing.T) {
	next := netip.MustParseAddr("10.0.0.0")
	reg, err := registry.New(registry.Topology{Services: []registry.Service{
		{Name: "reviews", Calls: []string{"ratings"}, OnCalleeError: "degrade", Versions: []registry.Version{{Name: "v1", Calls: []string{}}, {Name: "v2", OnCalleeError: "fail"}}},
		{Name: "ratings", Path: "/rate", Versions: []registry.Version{{Name: "v1"}}},
	}}, func() (netip.Addr, error) { next = next.Next(); return next, nil })
	require.NoError(t, err)
	_, ok := flagValue(argsOf(t, reg, "reviews", "v1"), "-calls")
	assert.False(t, ok, "reviews v1 calls nothing")
	calls, ok := flagValue(argsOf(t, reg, "reviews", "v2"), "-calls")
	assert.True(t, ok)
	assert.Equal(t, "ratings:80/rate", calls)
	// onCalleeError per version, else the service's.
	mode, _ := flagValue(argsOf(t, reg, "reviews", "v1"), "-on-callee-error")
	assert.Equal(t, "degrade", mode)
	mode, _ = flagValue(argsOf(t, reg, "reviews", "v2"), "-on-callee-error")
	assert.Equal(t, "fail", mode)
}
