package istiotest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	security "istio.io/api/security/v1beta1"
)

// The object carries its name and namespace and a copy of the spec; an
// UNSET mode leaves the mode out, as a PeerAuthentication that only sets
// port modes is written.
func TestBuilders(t *testing.T) {
	spec := MTLS(security.PeerAuthentication_MutualTLS_STRICT, map[string]string{"app": "payment"},
		map[uint32]security.PeerAuthentication_MutualTLS_Mode{8080: security.PeerAuthentication_MutualTLS_DISABLE})
	pa := PeerAuthentication("shop", "payment", spec)
	assert.Equal(t, "shop", pa.Namespace)
	assert.Equal(t, "payment", pa.Name)
	assert.Equal(t, security.PeerAuthentication_MutualTLS_STRICT, pa.Spec.GetMtls().GetMode())
	assert.Equal(t, map[string]string{"app": "payment"}, pa.Spec.GetSelector().GetMatchLabels())
	assert.Equal(t, security.PeerAuthentication_MutualTLS_DISABLE, pa.Spec.GetPortLevelMtls()[8080].GetMode())
	spec.Selector = nil
	assert.NotNil(t, pa.Spec.GetSelector(), "the object holds a copy of the spec")

	assert.Nil(t, MTLS(security.PeerAuthentication_MutualTLS_UNSET, nil, nil).GetMtls())

	subsets := VersionSubsets("v1", "v2")
	assert.Len(t, subsets, 2)
	assert.Equal(t, "v2", subsets[1].GetName())
	assert.Equal(t, map[string]string{"version": "v2"}, subsets[1].GetLabels())
}
