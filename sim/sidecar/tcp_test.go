package sidecar

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// Raw TCP through a sidecar pair, on the shared rig: the test is order's
// app and opens its TCP connections as a CONNECT to its sidecar's 15001
// listener naming db's VIP; db's apps are TCP echo servers that answer a
// line with their pod's name.

// tcpEcho takes every connection of l: it reads one line and answers
// "<pod> <line>", then closes. The returned listener's Accept gives the
// rig's HTTP server nothing.
func tcpEcho(pod string) func(net.Listener) net.Listener {
	return func(l net.Listener) net.Listener {
		e := &echoListener{Listener: l, done: make(chan struct{})}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					e.Close()
					return
				}
				go func() {
					defer c.Close()
					line, err := bufio.NewReader(c).ReadString('\n')
					if err != nil {
						return
					}
					_, _ = fmt.Fprintf(c, "%s %s", pod, line)
				}()
			}
		}()
		return e
	}
}

type echoListener struct {
	net.Listener
	done chan struct{}
	once sync.Once
}

func (e *echoListener) Accept() (net.Conn, error) { <-e.done; return nil, net.ErrClosed }
func (e *echoListener) Close() error {
	e.once.Do(func() { close(e.done); e.Listener.Close() })
	return nil
}

// tcpRigTopology is order calling db (TCP on 5432), v1 and v2 one pod each.
func tcpRigTopology() registry.Topology {
	return registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}},
		{Name: "db", Port: 5432, Protocol: "tcp", Versions: []registry.Version{{Name: "v1"}, {Name: "v2"}}},
	}}
}

func newTCPRig(t *testing.T, cfg meshconfig.Config) *rig {
	return newRig(t, rigOpts{topo: tcpRigTopology(), cfg: cfg, seed: 3, listeners: map[string]func(net.Listener) net.Listener{
		"db-v1-0": tcpEcho("db-v1-0"), "db-v2-0": tcpEcho("db-v2-0"),
	}})
}

// connect opens a CONNECT tunnel through pod's sidecar to target and
// returns the tunnel, or the sidecar's refusal as an error.
func (m *rig) connect(pod, target string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", m.proxies[pod].OutboundAddr(), rigWait)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(rigWait))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, nil, fmt.Errorf("CONNECT answered %d", resp.StatusCode)
	}
	return c, br, nil
}

// echo sends one line through a new tunnel and returns the answer.
func (m *rig) echo(target, line string) (string, error) {
	c, br, err := m.connect(rigCaller, target)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return br.ReadString('\n')
}

func (m *rig) dbVIP() string {
	s, ok := m.reg.Service("db")
	require.True(m.t, ok)
	return s.VIP.String() + ":5432"
}

// A weighted tcp route (v1 weight 0, dropped as istiod drops it; v2 100)
// sends every connection to db v2; both sidecars count each connection
// in Istio's TCP metrics with the bytes each way, the destination as
// mutual_tls with order's principal.
func TestTCPWeightedRouteAndMetrics(t *testing.T) {
	m := newTCPRig(t, meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
			Spec: networking.DestinationRule{Host: "db", Subsets: []*networking.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}}}}},
		VirtualServices: []*networkingv1.VirtualService{{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
			Spec: networking.VirtualService{Hosts: []string{"db"}, Tcp: []*networking.TCPRoute{{Route: []*networking.RouteDestination{
				{Destination: &networking.Destination{Host: "db", Subset: "v1"}, Weight: 0},
				{Destination: &networking.Destination{Host: "db", Subset: "v2"}, Weight: 100},
			}}}}}},
	})
	const n = 20
	for i := range n {
		got, err := m.echo(m.dbVIP(), fmt.Sprintf("hello-%02d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("db-v2-0 hello-%02d\n", i), got)
	}
	src := map[string]string{"reporter": "source", "destination_version": "v2", "destination_service": "db.default.svc.cluster.local", "request_protocol": "tcp"}
	dst := map[string]string{"reporter": "destination", "connection_security_policy": "mutual_tls", "source_principal": mtOrderID, "destination_workload": "db-v2"}
	// The counts are written when each connection ends, which the client
	// does not wait for: poll within a bound.
	require.Eventually(t, func() bool {
		return m.metric(rigCaller, "istio_tcp_connections_closed_total", src) == n &&
			m.metric("db-v2-0", "istio_tcp_connections_closed_total", dst) == n
	}, rigWait, 10*time.Millisecond)
	assert.Equal(t, float64(n), m.metric(rigCaller, "istio_tcp_connections_opened_total", src))
	assert.Equal(t, float64(n), m.metric("db-v2-0", "istio_tcp_connections_opened_total", dst))
	// "hello-00\n" is 9 bytes in; "db-v2-0 hello-00\n" 17 bytes out.
	assert.Equal(t, float64(9*n), m.metric(rigCaller, "istio_tcp_received_bytes_total", src))
	assert.Equal(t, float64(17*n), m.metric(rigCaller, "istio_tcp_sent_bytes_total", src))
	assert.Equal(t, float64(9*n), m.metric("db-v2-0", "istio_tcp_received_bytes_total", dst))
	assert.Equal(t, float64(17*n), m.metric("db-v2-0", "istio_tcp_sent_bytes_total", dst))
	assert.Zero(t, m.metric("db-v1-0", "istio_tcp_connections_opened_total", nil))
}

// Without a VirtualService the tcp_proxy's one cluster balances over both
// pods; a CONNECT to an address no TCP listener has, or to a name, is
// refused by the sidecar (404, 400).
func TestTCPDefaultRouteAndRefusedConnects(t *testing.T) {
	m := newTCPRig(t, meshconfig.Config{})
	pods := map[string]int{}
	for i := range 30 {
		got, err := m.echo(m.dbVIP(), fmt.Sprint(i))
		require.NoError(t, err)
		pod, _, _ := strings.Cut(got, " ")
		pods[pod]++
	}
	assert.Positive(t, pods["db-v1-0"], pods)
	assert.Positive(t, pods["db-v2-0"], pods)

	order, _ := m.reg.Service("order")
	_, _, err := m.connect(rigCaller, order.VIP.String()+":80")
	require.EqualError(t, err, "CONNECT answered 404", "order's port is HTTP: no TCP listener")
	_, _, err = m.connect(rigCaller, "db.default.svc.cluster.local:5432")
	require.EqualError(t, err, "CONNECT answered 400")
}

// STRICT on a TCP port: db's inbound listener has the TLS chain only, so a
// plaintext connection to the pod is closed without a byte of the app's,
// while order's sidecar, with mTLS, is answered.
func TestTCPStrictRefusesPlaintext(t *testing.T) {
	m := newTCPRig(t, meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: meshconfig.RootNamespace},
		Spec:       security.PeerAuthentication{Mtls: &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}},
	}}})
	got, err := m.echo(m.dbVIP(), "meshed")
	require.NoError(t, err)
	assert.Contains(t, got, " meshed\n")

	c, err := net.DialTimeout("tcp", m.inbound("db-v1-0"), rigWait)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(rigWait))
	_, _ = io.WriteString(c, "plaintext\n")
	b, err := io.ReadAll(c)
	assert.Empty(t, b, "no answer from the app")
	if err != nil {
		assert.False(t, isTimeout(err), "closed, not left hanging: %v", err)
	}
	assert.Zero(t, m.metric("db-v1-0", "istio_tcp_connections_opened_total", map[string]string{"connection_security_policy": "none"}))
}
