package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

func strictMesh() meshconfig.Config {
	p := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: meshconfig.RootNamespace}}
	p.Spec.Mtls = &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}
	return meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{p}}
}

// askSecrets opens an ADS stream to the mesh's control plane as an outsider
// would (with token, or none) and asks for node's secrets.
func askSecrets(t *testing.T, addr, node, token string) (*discovery.DiscoveryResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, xdsserver.TokenHeader, "Bearer "+token)
	}
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: resource.SecretType, ResourceNames: []string{"default", "ROOTCA"}}))
	return st.Recv()
}

func TestOutsiderGetsNoSecretNorConfigAndTheSocketIsPrivate(t *testing.T) {
	m := startMesh(t, strictMesh()).(*Mesh)
	payment, order := "", ""
	for _, p := range m.reg.Pods {
		switch p.Name {
		case "payment-v1-0":
			payment = p.NodeID()
		case "order-v1-0":
			order = p.NodeID()
		}
	}
	addr := m.XDS().Addr()
	network, path := xdsserver.SplitAddr(addr)
	require.Equal(t, "unix", network, "the control plane listens on no TCP port")
	fi, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "no other user may enter the socket's directory")

	_, err = askSecrets(t, addr, payment, "")
	assert.Error(t, err, "no token: no secret")
	_, err = askSecrets(t, addr, payment, m.cp.Token(order))
	assert.Error(t, err, "order's token does not buy payment's key")
	r, err := askSecrets(t, addr, payment, m.cp.Token(payment))
	require.NoError(t, err, "payment's own token is served (the test can fail)")
	assert.NotEmpty(t, r.GetResources())
	assert.GreaterOrEqual(t, m.XDS().Outsiders(), int64(2))
}

// tcpListeners lists the TCP ports listening on ip (from /proc/net/tcp).
func tcpListeners(t *testing.T, ip netip.Addr) []int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("cannot read /proc/net/tcp: %v", err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
			continue
		}
		var a uint32
		var port int
		if _, err := fmt.Sscanf(fields[1], "%08X:%04X", &a, &port); err != nil {
			continue
		}
		if netip.AddrFrom4([4]byte{byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24)}) == ip {
			out = append(out, port)
		}
	}
	return out
}

func TestStrictCannotBeBypassedThroughTheAppOr15001(t *testing.T) {
	m := startMesh(t, strictMesh()).(*Mesh)
	p, ok := m.reg.Pod("payment-v1-0")
	require.True(t, ok)
	// On the pod's address only the sidecar listens: its inbound port and its stats.
	assert.ElementsMatch(t, []int{p.Port, 15090}, tcpListeners(t, p.IP), "the app and 15001 listen on no TCP port")
	assert.True(t, strings.HasPrefix(p.AppAddr, "unix:"), "the app is on a socket of the pod's own: %s", p.AppAddr)
	_, err := net.DialTimeout("tcp", netip.AddrPortFrom(p.IP, 15001).String(), time.Second)
	assert.Error(t, err, "15001 is no open forward proxy")

	// Plaintext to the inbound port is refused under STRICT.
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post("http://"+netip.AddrPortFrom(p.IP, uint16(p.Port)).String()+"/pay", "application/json", strings.NewReader("{}"))
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatalf("plaintext reached payment under STRICT: %s", resp.Status)
	}

	// From inside the pod, through its capture socket, the same call goes
	// through the mesh with mTLS (the test can fail).
	in, err := m.AppClient("order-v1-0", 5*time.Second)
	require.NoError(t, err)
	resp, err = in.Post("http://payment.default.svc.cluster.local/pay", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}
