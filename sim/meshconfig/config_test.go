package meshconfig

import (
	"testing"

	"github.com/stretchr/testify/assert"
	meshapi "istio.io/api/mesh/v1alpha1"
)

// A copy's tracing settings are its own.
func TestDeepCopyTracing(t *testing.T) {
	var c Config
	c.Mesh.Tracing = &Tracing{
		Proxy:            &meshapi.Tracing{Sampling: 5},
		Providers:        []*meshapi.MeshConfig_ExtensionProvider{{Name: "zipkin"}},
		DefaultProviders: []string{"zipkin"},
	}
	cp := c.DeepCopy()
	cp.Mesh.Tracing.Proxy.Sampling = 50
	cp.Mesh.Tracing.Providers[0].Name = "other"
	cp.Mesh.Tracing.DefaultProviders[0] = "other"
	cp.Mesh.Tracing.Disabled = true
	assert.Equal(t, 5.0, c.Mesh.Tracing.Proxy.GetSampling())
	assert.Equal(t, "zipkin", c.Mesh.Tracing.Providers[0].GetName())
	assert.Equal(t, []string{"zipkin"}, c.Mesh.Tracing.DefaultProviders)
	assert.False(t, c.Mesh.Tracing.Disabled)
	assert.Nil(t, Config{}.DeepCopy().Mesh.Tracing, "Istio's defaults stay nil")
	assert.Equal(t, Tracing{}, MeshSettings{}.TracingOrDefault())
}
