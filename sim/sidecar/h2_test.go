package sidecar

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// h2cClient speaks HTTP/2 with prior knowledge to the caller sidecar's
// outbound listener, as a gRPC app does to its sidecar.
func h2cClient(t *testing.T, m *rig) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	addr := m.proxies[rigCaller].OutboundAddr()
	tr := &http.Transport{Protocols: &p, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: rigWait}
}

// A port named grpc is HTTP/2 end to end: istiod gives its clusters,
// outbound and inbound, explicit http2_protocol_options
// (cluster_builder.go setUpstreamProtocol), so an HTTP/1.1 call from the
// app leaves its sidecar as HTTP/2, goes over mTLS with ALPN h2 (istio,
// h2 offered: cluster_tls.go ALPNInMeshH2WithMxc) and reaches the app as
// h2c.
func TestH2UpstreamForGRPCPort(t *testing.T) {
	topo := rigTopology(registry.Version{Name: "v1"})
	topo.Services[1].Protocol = "grpc"
	m := newRig(t, rigOpts{topo: topo, h2c: true})
	r := m.call()
	require.Equal(t, http.StatusOK, r.code, r.body)
	seen := m.apps["payment-v1-0"].requests()
	require.Len(t, seen, 1)
	assert.Equal(t, "HTTP/2.0", seen[0].proto, "the app is spoken to over h2c")
	assert.Equal(t, "mutual_tls", connectionSecurity(t, m, "payment-v1-0"), "sidecar to sidecar is mTLS")
}

// connectionSecurity is connection_security_policy of the requests the
// pod's sidecar took inbound. A sidecar records a request after its
// response is written, and there is no event for that: it is waited for.
func connectionSecurity(t *testing.T, m *rig, pod string) string {
	t.Helper()
	var got string
	assert.Eventually(t, func() bool {
		for _, policy := range []string{"mutual_tls", "none"} {
			v, err := m.scrape(pod, "istio_requests_total", map[string]string{"reporter": "destination", "connection_security_policy": policy})
			if err == nil && v > 0 {
				got = policy
				return true
			}
		}
		return false
	}, rigWait, 5*time.Millisecond, "no request recorded inbound on %s", pod)
	return got
}

// An HTTP port stays HTTP/1.1 (h2UpgradePolicy defaults to DO_NOT_UPGRADE,
// mesh.proto), and a DestinationRule's h2UpgradePolicy UPGRADE makes it
// HTTP/2 (cluster_traffic_policy.go shouldH2Upgrade).
func TestH2UpgradePolicy(t *testing.T) {
	up := rigDR(&networking.TrafficPolicy{ConnectionPool: &networking.ConnectionPoolSettings{
		Http: &networking.ConnectionPoolSettings_HTTPSettings{H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_UPGRADE},
	}})
	for _, c := range []struct {
		name string
		cfg  meshconfig.Config
		want string
	}{
		{"default", meshconfig.Config{}, "HTTP/1.1"},
		{"upgrade", meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{up}}, "HTTP/2.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), cfg: c.cfg, h2c: true})
			r := m.call()
			require.Equal(t, http.StatusOK, r.code, r.body)
			seen := m.apps["payment-v1-0"].requests()
			require.Len(t, seen, 1)
			// The upgrade is of the outbound cluster: sidecar to sidecar.
			// The inbound cluster to the app follows the port's protocol,
			// HTTP/1.1 for a port named http.
			assert.Equal(t, "HTTP/1.1", seen[0].proto)
			assert.Equal(t, c.want, m.inboundProto(t, "payment-v1-0"))
		})
	}
}

// inboundProto is the protocol the requests the pod's sidecar took on its
// inbound chain came in, by Envoy's http.<stat_prefix>.downstream_rq_http1_total
// and downstream_rq_http2_total.
func (m *rig) inboundProto(t *testing.T, pod string) string {
	t.Helper()
	l := map[string]string{"envoy_http_conn_manager_prefix": "inbound_0.0.0.0_8080"}
	h1, h2 := m.metric(pod, "envoy_http_downstream_rq_http1_total", l), m.metric(pod, "envoy_http_downstream_rq_http2_total", l)
	switch {
	case h1 > 0 && h2 == 0:
		return "HTTP/1.1"
	case h2 > 0 && h1 == 0:
		return "HTTP/2.0"
	}
	return fmt.Sprintf("h1 %v, h2 %v", h1, h2)
}

// The app may speak HTTP/2 with prior knowledge to its sidecar (codec_type
// AUTO, http_connection_manager.proto), and an HTTP/2 sidecar takes h2
// over TLS by ALPN (istiod's inbound DownstreamTlsContext offers h2,
// http/1.1).
func TestH2CFromTheApp(t *testing.T) {
	topo := rigTopology(registry.Version{Name: "v1"})
	topo.Services[1].Protocol = "grpc"
	m := newRig(t, rigOpts{topo: topo, h2c: true})
	resp, err := h2cClient(t, m).Get("http://" + rigPaymentHost + "/pay")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	assert.Equal(t, "HTTP/2.0", m.inboundProto(t, "payment-v1-0"))
	assert.Equal(t, "HTTP/2.0", m.apps["payment-v1-0"].requests()[0].proto)
}

// A plaintext HTTP/1.1 or h2 TLS client handshake against the inbound
// listener negotiates h2 when offered (ALPN h2, http/1.1 on the server).
func TestInboundTLSOffersH2(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"})})
	p, _ := m.reg.Pod("payment-v1-0")
	cert := m.cert("order-v1-0")
	pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	require.NoError(t, err)
	c, err := tls.Dial("tcp", net.JoinHostPort(p.IP.String(), "8080"), &tls.Config{
		Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, //nolint:gosec // the test checks ALPN only
		NextProtos: []string{"istio-peer-exchange", "istio", "h2"},
	})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "h2", c.ConnectionState().NegotiatedProtocol)
}

// max_requests (http2MaxRequests) bounds the requests in flight, and on
// HTTP/2 every stream is a request (circuit_breaker.proto: "the maximum
// number of parallel requests"): two streams of one HTTP/2 connection,
// the first held by the app, make the second overflow, 503 with flag UO.
func TestGRPCMaxRequestsPerStream(t *testing.T) {
	release := make(chan struct{})
	topo := rigTopology(registry.Version{Name: "v1"})
	topo.Services[1].Protocol = "grpc"
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{ConnectionPool: &networking.ConnectionPoolSettings{
		Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2MaxRequests: 1},
	}})}}
	m := newRig(t, rigOpts{topo: topo, cfg: cfg, h2c: true, handlers: map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		},
	}})
	c := h2cClient(t, m)
	first := make(chan int, 1)
	go func() {
		resp, err := c.Get("http://" + rigPaymentHost + "/pay")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-m.apps["payment-v1-0"].arrived:
	case <-time.After(rigWait):
		t.Fatal("the first stream never reached the app")
	}
	resp, err := c.Get("http://" + rigPaymentHost + "/pay")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "HTTP/2.0", resp.Proto, "the second stream shares the connection")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "UO", resp.Header.Get(HeaderResponseFlags))
	close(release)
	assert.Equal(t, http.StatusOK, <-first)
}
