package spec

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the builtin sidecar cannot do is refused at load time, at its line,
// rather than translated into something Envoy would do differently.
func TestUnsupportedActionsAreRefused(t *testing.T) {
	src := `name: unsupported
mesh:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: payment}
    spec:
      hosts: [payment]
      http:
        - redirect: {uri: /elsewhere}
        - directResponse: {status: 200}
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: payment}
    spec:
      host: payment
      trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}
load: {target: order, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`
	_, err := LoadFS(fstest.MapFS{"u.yaml": {Data: []byte(src)}}, "u.yaml", "u.yaml")
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "u.yaml:9: mesh[0].spec.http[0].redirect: redirect is not supported")
	assert.Contains(t, msg, "u.yaml:10: mesh[0].spec.http[1].directResponse: directResponse is not supported")
	assert.Contains(t, msg, "u.yaml:16: mesh[1].spec.trafficPolicy.loadBalancer.simple: PASSTHROUGH is not supported")
}
