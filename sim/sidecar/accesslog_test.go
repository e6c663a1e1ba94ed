package sidecar

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/syncbuf"
	"github.com/meshbench/meshbench/sim/accesslog"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// waitLines flushes pod's access log until it holds n lines: a line is
// written once the handler returns, just after the caller has its answer.
func (m *rig) waitLines(pod string, sink *syncbuf.Buffer, n int) []string {
	m.t.Helper()
	require.Eventually(m.t, func() bool {
		m.proxies[pod].logFiles.flush()
		return len(sink.Lines()) >= n
	}, rigWait, 5*time.Millisecond)
	lines := sink.Lines()
	require.Len(m.t, lines, n, "one line per request")
	return lines
}

func accessLogRig(t *testing.T, a meshconfig.AccessLog, dead ...string) (*rig, map[string]*syncbuf.Buffer) {
	sinks := map[string]*syncbuf.Buffer{rigCaller: {}, "payment-v1-0": {}}
	var cfg meshconfig.Config
	cfg.Mesh.AccessLog = a
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), cfg: cfg, dead: dead, accessLogs: sinks, seed: 3})
	return m, sinks
}

// Istio's default text format: one line per request on each side, with
// the request, its answer and where it went.
func TestAccessLogDefaultText(t *testing.T) {
	m, sinks := accessLogRig(t, meshconfig.AccessLog{File: "/dev/stdout"})
	const n = 3
	for range n {
		require.Equal(t, 200, m.call("user-agent", "rigtest").code)
	}
	pay, ok := m.reg.Pod("payment-v1-0")
	require.True(t, ok)
	out := m.waitLines(rigCaller, sinks[rigCaller], n)
	for i, l := range out {
		assert.Regexp(t, `^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /pay HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ - "-" "rigtest" "rz-`+fmt.Sprint(i+1)+`" "payment.default.svc.cluster.local" "`+
			pay.IP.String()+`:\d+" outbound\|80\|\|payment\.default\.svc\.cluster\.local - \S+ \S+ - \S+$`, l)
	}
	in := m.waitLines("payment-v1-0", sinks["payment-v1-0"], n)
	for _, l := range in {
		assert.Contains(t, l, `"GET /pay HTTP/1.1" 200 - via_upstream`)
		assert.Contains(t, l, " inbound|")
	}
}

// A dead endpoint: the line says 503 and UF, as the response header does.
func TestAccessLogConnectFailure(t *testing.T) {
	m, sinks := accessLogRig(t, meshconfig.AccessLog{File: "/dev/stdout"}, "payment-v1-0")
	r := m.call()
	require.Equal(t, 503, r.code)
	require.Contains(t, r.flags, flagConnectFailure)
	l := m.waitLines(rigCaller, sinks[rigCaller], 1)[0]
	assert.Contains(t, l, `"GET /pay HTTP/1.1" 503 `+r.flags+` upstream_reset_before_response_started{connection_failure} `)
	assert.Contains(t, l, " outbound|80||payment.default.svc.cluster.local ")
}

// Istio's default JSON labels: one object per line, numbers as numbers.
func TestAccessLogDefaultJSON(t *testing.T) {
	m, sinks := accessLogRig(t, meshconfig.AccessLog{File: "/dev/stdout", JSON: true})
	r := m.call()
	require.Equal(t, 200, r.code)
	l := m.waitLines(rigCaller, sinks[rigCaller], 1)[0]
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(l), &got))
	assert.Len(t, got, len(accesslog.DefaultJSON))
	assert.Equal(t, "GET", got["method"])
	assert.Equal(t, "/pay", got["path"])
	assert.Equal(t, float64(200), got["response_code"])
	assert.Equal(t, "-", got["response_flags"])
	assert.Equal(t, r.id, got["request_id"])
	assert.Equal(t, "outbound|80||payment.default.svc.cluster.local", got["upstream_cluster"])
	assert.Nil(t, got["upstream_transport_failure_reason"])
}

// An operator the sidecar does not implement is refused, named.
func TestAccessLogUnknownOperatorNACK(t *testing.T) {
	m, _ := accessLogRig(t, meshconfig.AccessLog{File: "/dev/stdout"})
	m.cfg.Mesh.AccessLog = meshconfig.AccessLog{File: "/dev/stdout", Format: "%START_TIME% %UPSTREAM_PEER_URI_SAN%"}
	v := m.publish()
	err := m.waitConverged(v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsupported access log command operator %UPSTREAM_PEER_URI_SAN%")
}

// tcp_proxy: a line per connection at its end, with its bytes, the
// upstream and the cluster; the HTTP operators print "-", the code 0.
func TestAccessLogTCPConnection(t *testing.T) {
	sinks := map[string]*syncbuf.Buffer{rigCaller: {}}
	var cfg meshconfig.Config
	cfg.Mesh.AccessLog = meshconfig.AccessLog{File: "/dev/stdout"}
	m := newRig(t, rigOpts{topo: tcpRigTopology(), cfg: cfg, seed: 3, accessLogs: sinks, listeners: map[string]func(net.Listener) net.Listener{
		"db-v1-0": tcpEcho("db-v1-0"), "db-v2-0": tcpEcho("db-v2-0"),
	}})
	got, err := m.echo(m.dbVIP(), "hello-00")
	require.NoError(t, err)
	pod, _, _ := strings.Cut(got, " ")
	p, ok := m.reg.Pod(pod)
	require.True(t, ok)
	l := m.waitLines(rigCaller, sinks[rigCaller], 1)[0]
	// "hello-00\n" is 9 bytes in; "db-v?-0 hello-00\n" 17 bytes out.
	assert.Regexp(t, `^\[\S+\] "- - -" 0 - - - "-" 9 17 \d+ - "-" "-" "-" "-" "`+p.IP.String()+`:\d+" outbound\|5432\|\|db\.default\.svc\.cluster\.local \S+:\d+ `+strings.ReplaceAll(m.dbVIP(), ".", `\.`)+` \S+ - -$`, l)
}
