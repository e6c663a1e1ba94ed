package sidecar

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Filter chain selection as Envoy prunes it: the most specific match at
// each step, no backtracking, default_filter_chain when none is left.
func TestMatchChainInEnvoysOrder(t *testing.T) {
	lc := &listenerConf{chains: []chainConf{
		{name: "port-tls", match: chainMatch{destPort: 8080, transport: "tls", appProtos: []string{"istio-http/1.1"}}},
		{name: "port-plain", match: chainMatch{destPort: 8080, transport: "raw_buffer"}},
		{name: "any-http", match: chainMatch{transport: "raw_buffer", appProtos: []string{"http/1.1", "h2c"}}},
		{name: "any-plain", match: chainMatch{transport: "raw_buffer"}},
		{name: "self", match: chainMatch{destPort: 15006}},
	}, defaultChain: &chainConf{name: "default"}}
	dst := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port) }
	for _, c := range []struct {
		ci   connInfo
		want string
	}{
		{connInfo{dst: dst(8080), transport: "tls", alpn: []string{"istio-http/1.1"}}, "port-tls"},
		{connInfo{dst: dst(8080), transport: "raw_buffer", alpn: []string{"http/1.1"}}, "port-plain"},
		// A port chain matched, so the port-less chains are out even when the later steps fail.
		{connInfo{dst: dst(8080), transport: "tls", alpn: []string{"h2"}}, "default"},
		{connInfo{dst: dst(9000), transport: "raw_buffer", alpn: []string{"http/1.1"}}, "any-http"},
		{connInfo{dst: dst(9000), transport: "raw_buffer"}, "any-plain"},
		{connInfo{dst: dst(9000), transport: "tls"}, "default"},
		{connInfo{dst: dst(15006), transport: "raw_buffer"}, "self"},
	} {
		assert.Equal(t, c.want, lc.matchChain(&c.ci).name, "%+v", c.ci)
	}
}

func TestInspectors(t *testing.T) {
	for in, want := range map[string]string{
		"GET /x HTTP/1.1\r\nHost: a\r\n\r\n": "http/1.1",
		"POST / HTTP/1.0\r\n":                "http/1.0",
		string(h2Preface):                    "h2c",
		"\x00\x01binary":                     "",
		"GET /x SPDY/3\r\n":                  "",
	} {
		p, more := classifyHTTP([]byte(in))
		assert.False(t, more, in)
		assert.Equal(t, want, p, in)
	}
	_, more := classifyHTTP([]byte("GE"))
	assert.True(t, more, "a request line in progress needs more")

	// A real ClientHello, from crypto/tls, gives its SNI and ALPN.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: "outbound_.80_._.payment.default.svc.cluster.local", NextProtos: []string{"istio-peer-exchange", "istio"}, InsecureSkipVerify: true}).Handshake() //nolint:gosec // no server
	}()
	buf := make([]byte, maxInspect)
	n, err := b.Read(buf)
	require.NoError(t, err)
	rec := buf[:n]
	require.Equal(t, byte(0x16), rec[0])
	sni, alpn, ok := parseClientHello(rec[5:])
	require.True(t, ok)
	assert.Equal(t, "outbound_.80_._.payment.default.svc.cluster.local", sni)
	assert.Equal(t, []string{"istio-peer-exchange", "istio"}, alpn)
}
