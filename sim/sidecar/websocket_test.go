package sidecar

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// WebSocket through a real sidecar pair with mTLS: the test is order's app
// and dials payment's WebSocket through its sidecar's 15001 listener (an
// HTTP/1.1 request for ws://payment..., as to a forward proxy); payment's
// apps upgrade it (gorilla/websocket) and echo each message with their
// pod's name.

func wsEcho(pod string) func(http.ResponseWriter, *http.Request) {
	up := websocket.Upgrader{}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-App-Pod": {pod}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(kind, append([]byte(pod+" "), msg...)); err != nil {
				return
			}
		}
	}
}

func newWSRig(t *testing.T) *rig {
	t.Helper()
	topo := registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}},
		{Name: "payment", Versions: []registry.Version{{Name: "v1"}}},
	}}
	return newRig(t, rigOpts{topo: topo, cfg: meshconfig.Config{}, seed: 5, handlers: map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": wsEcho("payment-v1-0"),
	}})
}

// wsDial dials payment's WebSocket through the caller's sidecar.
func (m *rig) wsDial() (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "tcp", m.proxies[rigCaller].OutboundAddr())
		},
		HandshakeTimeout: rigWait,
	}
	return d.Dial("ws://"+rigPaymentHost+"/ws", nil)
}

// istiod's HCMs allow websocket (xdsgen sends upgrade_configs as istiod
// does): the upgrade passes both sidecars, over mTLS between them, and
// messages flow both ways; each side records the exchange as a 101.
func TestWebSocketUpgradePassesBothSidecars(t *testing.T) {
	m := newWSRig(t)
	c, resp, err := m.wsDial()
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "payment-v1-0", resp.Header.Get("X-App-Pod"))
	for _, msg := range []string{"one", "two", "three"} {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
		_, got, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "payment-v1-0 "+msg, string(got))
	}
	require.NoError(t, c.Close())
	want := map[string]string{"response_code": "101", "reporter": "destination", "connection_security_policy": "mutual_tls", "source_workload": "order-v1"}
	require.Eventually(t, func() bool {
		return m.metric("payment-v1-0", "istio_requests_total", want) == 1 &&
			m.metric(rigCaller, "istio_requests_total", map[string]string{"response_code": "101", "reporter": "source"}) == 1
	}, rigWait, 10*time.Millisecond)
}

// withRoute sets upgrade_configs on the caller's route to payment.
func withRoute(enabled bool) func(*xdsgen.Resources) {
	return func(r *xdsgen.Resources) {
		for _, rc := range r.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				if vh.GetName() != istionames.VirtualHostName(rigPaymentHost, 80) {
					continue
				}
				for _, rt := range vh.GetRoutes() {
					rt.GetRoute().UpgradeConfigs = []*route.RouteAction_UpgradeConfig{{UpgradeType: "websocket", Enabled: wrapperspb.Bool(enabled)}}
				}
			}
		}
	}
}

// withoutHCMUpgrades takes upgrade_configs off the caller's outbound HCM.
func withoutHCMUpgrades(t *testing.T) func(*xdsgen.Resources) {
	return func(r *xdsgen.Resources) {
		for _, l := range r.Listeners {
			if l.GetName() != istionames.OutboundListenerName(80) {
				continue
			}
			f := l.GetFilterChains()[0].GetFilters()[0]
			h := &hcm.HttpConnectionManager{}
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(h))
			h.UpgradeConfigs = nil
			a, err := anypb.New(h)
			require.NoError(t, err)
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
		}
	}
}

// A route that disables websocket refuses the upgrade as Envoy does: 403
// with an empty body and the connection closed, and nothing reaches the
// app; an HCM without upgrade_configs refuses it too, unless the route
// enables it (createUpgradeFilterChain).
func TestWebSocketRefusedAsEnvoyDoes(t *testing.T) {
	m := newWSRig(t)
	refused := func(why string) {
		t.Helper()
		before := m.apps["payment-v1-0"].count()
		c, resp, err := m.wsDial()
		if c != nil {
			c.Close()
		}
		require.ErrorIs(t, err, websocket.ErrBadHandshake, why)
		require.NotNil(t, resp, why)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, why)
		body, _ := io.ReadAll(resp.Body)
		assert.Empty(t, body, why)
		assert.True(t, resp.Close, "%s: the connection closes after the refusal", why)
		assert.Equal(t, before, m.apps["payment-v1-0"].count(), "%s: nothing reached the app", why)
	}
	m.converge(m.publish(withRoute(false)))
	refused("route disables websocket")

	m.converge(m.publish(withoutHCMUpgrades(t)))
	refused("HCM without upgrade_configs")

	m.converge(m.publish(withoutHCMUpgrades(t), withRoute(true)))
	c, _, err := m.wsDial()
	require.NoError(t, err, "the route enables what the HCM does not name")
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hi")))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "payment-v1-0 hi", string(got))
	c.Close()
}
