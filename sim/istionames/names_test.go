package istionames

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// host is the hostname of Service payment in namespace default.
var host = ServiceHost("payment", "default")

func TestServiceHostIsIstiosFQDN(t *testing.T) {
	assert.Equal(t, "payment.default.svc.cluster.local", host)
}

func TestClusterNameHelpers(t *testing.T) {
	assert.Equal(t, "outbound|80|v1|"+host, ClusterName("outbound", 80, "v1", host))
	assert.Equal(t, "inbound|8080||", InboundClusterName(8080))
	dir, port, subset, host, ok := ParseClusterName("outbound|80|v1|" + host)
	require.True(t, ok)
	assert.Equal(t, []any{"outbound", 80, "v1", host}, []any{dir, port, subset, host})
	for _, bad := range []string{"", "outbound|80|v1", "outbound|x|v1|h", "a|1|b|c|d"} {
		_, _, _, _, ok := ParseClusterName(bad)
		assert.False(t, ok, bad)
	}
	name := "outbound|80|v1|" + host
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _, _, _, _ = ParseClusterName(name) }), "parsed on every request")
	assert.Equal(t, "0.0.0.0_80", OutboundListenerName(80))
	assert.Equal(t, "80", OutboundRouteName(80))
	assert.Equal(t, "http.8080", GatewayRouteName(8080))
	assert.Equal(t, host+":80", VirtualHostName(host, 80))
}
