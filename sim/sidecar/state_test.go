package sidecar

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/sim/istionames"
)

// The request path finds its chain in indexes made with the listeners:
// the per-port outbound HTTP listener (not a bound, virtual or TCP one; the
// first by name when two take a port) and virtualInbound's HTTP chain for
// the port and the transport (the last that matches).
func TestStateIndexesChainsByPort(t *testing.T) {
	st := &state{}
	st.setListeners(map[string]*listenerConf{
		"b_80":     {name: "b_80", port: 80, chains: []chainConf{{name: "b", hcm: true}}},
		"a_80":     {name: "a_80", port: 80, chains: []chainConf{{name: "a", hcm: true}}},
		"tcp_9000": {name: "tcp_9000", port: 9000, chains: []chainConf{{name: "tcp"}}},
		"bound_81": {name: "bound_81", port: 81, bind: true, chains: []chainConf{{name: "bound", hcm: true}}},
		"outbound": {name: "virtualOutbound", port: 15001, virtual: "virtualOutbound", chains: []chainConf{{name: "vo", hcm: true}}},
		istionames.VirtualInboundListener: {name: istionames.VirtualInboundListener, port: 15006, virtual: "virtualInbound", chains: []chainConf{
			{name: "plain-old", destPort: 8080, hcm: true},
			{name: "plain", destPort: 8080, hcm: true},
			{name: "tls", destPort: 8080, hcm: true, tls: &downstreamTLS{}},
			{name: "tcp", destPort: 9090},
		}},
	})
	assert.Equal(t, "a", st.outboundChain(80).name)
	for _, port := range []int{81, 9000, 15001, 443} {
		assert.Nil(t, st.outboundChain(port), port)
	}
	assert.Equal(t, "plain", st.inbound[inboundChainKey{port: 8080}].name)
	assert.Equal(t, "tls", st.inbound[inboundChainKey{port: 8080, tls: true}].name)
	assert.Nil(t, st.inbound[inboundChainKey{port: 9090}])
	assert.Same(t, st.outbound[80], st.clone().outboundChain(80), "a clone keeps the index")
}
