package xdsgen_test

import (
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/accesslog"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// accessLogsOf are the access_log entries of every HCM and tcp_proxy of
// a sidecar and a gateway, by kind of filter.
func accessLogsOf(t *testing.T, a meshconfig.AccessLog) (http, tcp [][]*accesslogv3.AccessLog) {
	reg := tcpRegistry(t)
	var cfg meshconfig.Config
	cfg.Mesh.AccessLog = a
	g := xdsgen.New(reg, cfg)
	ls := append(g.ForSidecar(reg.Pods[0]).Listeners, g.ForGateway(xdsgen.Gateway{Name: "gw", Namespace: "istio-system", Port: 8080}).Listeners...)
	for _, l := range ls {
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains, l.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				switch f.GetName() {
				case "envoy.filters.network.http_connection_manager":
					m := &hcm.HttpConnectionManager{}
					require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
					http = append(http, m.GetAccessLog())
				case xdsgen.TCPProxyFilter:
					tcp = append(tcp, tcpProxyOf(t, f).GetAccessLog())
				}
			}
		}
	}
	return http, tcp
}

func fileLogOf(t *testing.T, al *accesslogv3.AccessLog) *filev3.FileAccessLog {
	t.Helper()
	require.Equal(t, "envoy.access_loggers.file", al.GetName())
	fl := &filev3.FileAccessLog{}
	require.NoError(t, al.GetTypedConfig().UnmarshalTo(fl))
	return fl
}

// accessLogFile gives every HCM and tcp_proxy istiod's file access log,
// with Istio's default text format.
func TestAccessLogFileOnEveryHCMAndTCPProxy(t *testing.T) {
	http, tcp := accessLogsOf(t, meshconfig.AccessLog{File: "/dev/stdout"})
	require.GreaterOrEqual(t, len(http), 4, "outbound, inbound chains, the gateway")
	require.NotEmpty(t, tcp)
	for _, als := range append(http, tcp...) {
		require.Len(t, als, 1)
		fl := fileLogOf(t, als[0])
		assert.Equal(t, "/dev/stdout", fl.GetPath())
		assert.Equal(t, accesslog.DefaultText, fl.GetLogFormat().GetTextFormatSource().GetInlineString())
	}
}

// JSON: Istio's default labels, unsorted; a custom text format gets its newline.
func TestAccessLogEncodings(t *testing.T) {
	http, _ := accessLogsOf(t, meshconfig.AccessLog{File: "/dev/stdout", JSON: true})
	sf := fileLogOf(t, http[0][0]).GetLogFormat()
	got := map[string]string{}
	for k, v := range sf.GetJsonFormat().GetFields() {
		got[k] = v.GetStringValue()
	}
	assert.Equal(t, accesslog.DefaultJSON, got)
	//lint:ignore SA1019 istiod sets the deprecated field.
	assert.False(t, sf.GetJsonFormatOptions().GetSortProperties())

	http, _ = accessLogsOf(t, meshconfig.AccessLog{File: "/tmp/x.log", Format: "%RESPONSE_CODE%"})
	fl := fileLogOf(t, http[0][0])
	assert.Equal(t, "/tmp/x.log", fl.GetPath())
	assert.Equal(t, "%RESPONSE_CODE%\n", fl.GetLogFormat().GetTextFormatSource().GetInlineString())
}

// Off unless asked.
func TestNoAccessLogByDefault(t *testing.T) {
	http, tcp := accessLogsOf(t, meshconfig.AccessLog{})
	for _, als := range append(http, tcp...) {
		assert.Empty(t, als)
	}
}
