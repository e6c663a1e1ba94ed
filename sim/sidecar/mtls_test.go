package sidecar

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshbench/meshbench/internal/istiotest"
	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Handshake tests: real listeners, real TLS, on the shared rig
// (rig_test.go). An xdsserver on a random 127.x address publishes what xdsgen generates, with SDS secrets from a
// sim/ca CA; builtin sidecars on their pods' own 127.x addresses fetch it;
// each pod's app is an httptest server that records the
// x-forwarded-client-cert it is handed. Clients are either the callers'
// sidecars (through their 15001 listener) or the test itself dialling a
// pod's inbound port with whatever certificate the case needs.

// The SPIFFE IDs of the test's workloads (service account = service name).
const (
	mtOrderID   = "spiffe://cluster.local/ns/default/sa/order"
	mtAuditID   = "spiffe://cluster.local/ns/default/sa/audit"
	mtPaymentID = "spiffe://cluster.local/ns/default/sa/payment"
)

// newMTMesh is the shared rig (rig_test.go) running every pod of topo
// under cfg, with certificates of the given lifetime.
func newMTMesh(t *testing.T, topo registry.Topology, cfg meshconfig.Config, ttl time.Duration) *rig {
	t.Helper()
	return newRig(t, rigOpts{topo: topo, cfg: cfg, ttl: ttl, seed: 7})
}

// inbound is a pod's inbound address: its IP and container port, as in EDS.
func (m *rig) inbound(pod string) string {
	p, ok := m.reg.Pod(pod)
	require.True(m.t, ok, pod)
	return net.JoinHostPort(p.IP.String(), strconv.Itoa(p.Port))
}

// via is a client that sends through a pod's sidecar, as its app does;
// every request gets a connection of its own.
func (m *rig) via(pod string) *http.Client {
	tr := &http.Transport{
		Proxy:             http.ProxyURL(&url.URL{Scheme: "http", Host: m.proxies[pod].OutboundAddr()}),
		DisableKeepAlives: true,
	}
	m.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: rigWait}
}

// tlsClient dials a pod's inbound port itself with a client certificate
// (none when c is nil), checking that the server presents a certificate
// of the mesh for wantServer, as a sidecar does. No keep-alive, no session
// resumption: each request is a full handshake.
func (m *rig) tlsClient(c *ca.Cert, wantServer string) *http.Client {
	bundle := x509bundle.FromX509Authorities(m.ca.TrustDomain(), []*x509.Certificate{m.ca.Root()})
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // checked as a SPIFFE ID below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, _, err := x509svid.ParseAndVerify(raw, bundle)
			if err != nil {
				return err
			}
			if id.String() != wantServer {
				return fmt.Errorf("server is %s, want %s", id, wantServer)
			}
			return nil
		},
	}
	if c != nil {
		kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		require.NoError(m.t, err)
		cfg.Certificates = []tls.Certificate{kp}
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	m.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: rigWait}
}

// plainClient talks plaintext HTTP, as a pod without a sidecar.
func (m *rig) plainClient() *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	m.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: rigWait}
}

func mtTopology(callers ...string) registry.Topology {
	var t registry.Topology
	for _, c := range callers {
		t.Services = append(t.Services, registry.Service{Name: c, Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}})
	}
	t.Services = append(t.Services, registry.Service{Name: "payment", Path: "/pay", Versions: []registry.Version{{Name: "v1"}}})
	return t
}

func mtPA(name, ns string, selector map[string]string, mode security.PeerAuthentication_MutualTLS_Mode, ports map[uint32]security.PeerAuthentication_MutualTLS_Mode) *securityv1.PeerAuthentication {
	return istiotest.PeerAuthentication(ns, name, istiotest.MTLS(mode, selector, ports))
}

func mtAP(name string, spec *security.AuthorizationPolicy) *securityv1.AuthorizationPolicy {
	return istiotest.AuthorizationPolicy("default", name, spec)
}

func meshStrict() meshconfig.Config {
	return meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{
		mtPA("default", meshconfig.RootNamespace, nil, security.PeerAuthentication_MutualTLS_STRICT, nil),
	}}
}

const paymentURL = "http://" + rigPaymentHost + "/pay"

// refusedBeforeHTTP checks that a request failed at the connection, with no
// HTTP answer at all.
func refusedBeforeHTTP(t *testing.T, r rigResp, err error, what string) {
	t.Helper()
	require.Error(t, err, "%s got an answer: %d %q", what, r.code, r.body)
	assert.Zero(t, r.code, what)
}

// STRICT: one TLS filter chain that requires a client certificate of the
// mesh. Raw bytes, plaintext HTTP, TLS without a client certificate, a
// certificate of another trust domain and an expired certificate of the
// mesh all end at the handshake; a certificate of the mesh gets through,
// and the app learns the caller's SPIFFE ID from x-forwarded-client-cert.
func TestMTLSStrictRefusesAllButMeshCertificates(t *testing.T) {
	m := newMTMesh(t, mtTopology("order"), meshStrict(), 0)
	addr := m.inbound("payment-v1-0")

	t.Run("raw TCP", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, rigWait)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "hello, anyone there?\r\n\r\n")
		require.NoError(t, err)
		// The deadline only bounds a broken listener; a closed connection ends the read at once.
		require.NoError(t, c.SetReadDeadline(time.Now().Add(rigWait)))
		b, err := io.ReadAll(c)
		assert.Empty(t, b, "STRICT answered raw bytes")
		var ne net.Error
		assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection stayed open: %v", err)
	})
	t.Run("plaintext HTTP", func(t *testing.T) {
		r, err := rigDo(m.plainClient(), http.MethodGet, "http://"+addr+"/pay")
		refusedBeforeHTTP(t, r, err, "plaintext HTTP")
	})
	t.Run("TLS without a client certificate", func(t *testing.T) {
		r, err := rigDo(m.tlsClient(nil, mtPaymentID), http.MethodGet, "https://"+addr+"/pay")
		refusedBeforeHTTP(t, r, err, "TLS without a certificate")
		assert.ErrorContains(t, err, "certificate required")
	})
	t.Run("foreign trust domain", func(t *testing.T) {
		foreign, err := ca.New("evil.local", 0)
		require.NoError(t, err)
		id, err := foreign.WorkloadID("default", "order")
		require.NoError(t, err)
		c, err := foreign.Issue(id)
		require.NoError(t, err)
		r, err := rigDo(m.tlsClient(c, mtPaymentID), http.MethodGet, "https://"+addr+"/pay")
		refusedBeforeHTTP(t, r, err, "a foreign certificate")
		assert.ErrorContains(t, err, "bad certificate", "the server's verification refuses it")
	})
	t.Run("expired mesh certificate", func(t *testing.T) {
		id, err := m.ca.WorkloadID("default", "order")
		require.NoError(t, err)
		c, err := m.ca.IssueExpired(id)
		require.NoError(t, err)
		r, err := rigDo(m.tlsClient(c, mtPaymentID), http.MethodGet, "https://"+addr+"/pay")
		refusedBeforeHTTP(t, r, err, "an expired certificate")
		assert.ErrorContains(t, err, "bad certificate")
	})
	require.Empty(t, m.apps["payment-v1-0"].requests(), "a refused connection reached the app")

	t.Run("mesh certificate", func(t *testing.T) {
		r, err := rigDo(m.tlsClient(m.cert("order-v1-0"), mtPaymentID), http.MethodGet, "https://"+addr+"/pay")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.code, r.body)
		seen := m.apps["payment-v1-0"].requests()
		require.Len(t, seen, 1)
		assert.Contains(t, seen[0].xfcc, ";URI="+mtOrderID, "x-forwarded-client-cert names the caller")
		assert.Contains(t, seen[0].xfcc, "By="+mtPaymentID)
		sum := sha256.Sum256(r.tls.PeerCertificates[0].Raw)
		assert.NotContains(t, seen[0].xfcc, hex.EncodeToString(sum[:]), "Hash is the client's certificate, not the server's")
		m.eventuallyCounter("payment-v1-0", "istio_requests_total", map[string]string{
			"reporter": "destination", "connection_security_policy": "mutual_tls", "source_principal": mtOrderID,
			"destination_principal": mtPaymentID, "response_code": "200",
		}, 1)
	})
	t.Run("order's sidecar", func(t *testing.T) {
		// Auto mTLS: the endpoint carries tlsMode=istio, the sidecar presents order's certificate.
		r, err := rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.code, r.body)
		seen := m.apps["payment-v1-0"].requests()
		require.Len(t, seen, 2)
		assert.Contains(t, seen[1].xfcc, ";URI="+mtOrderID)
		want := sha256.Sum256(m.proxies["order-v1-0"].secrets().certs[xdsgen.SecretWorkload].Leaf.Raw)
		assert.Contains(t, seen[1].xfcc, "Hash="+hex.EncodeToString(want[:]), "the certificate the sidecar holds from SDS")
		m.eventuallyCounter("payment-v1-0", "istio_requests_total", map[string]string{
			"reporter": "destination", "connection_security_policy": "mutual_tls", "source_principal": mtOrderID,
			"source_workload": "order-v1", "response_code": "200",
		}, 1)
	})
	plain, err := m.scrape("payment-v1-0", "istio_requests_total", map[string]string{"connection_security_policy": "none"})
	require.NoError(t, err)
	assert.Zero(t, plain, "STRICT let plaintext through")
}

// PERMISSIVE, Istio's default: a TLS chain and a plaintext chain on one
// port, told apart by the first bytes; the metrics say which was which.
func TestMTLSPermissiveServesBothAndLabelsThem(t *testing.T) {
	m := newMTMesh(t, mtTopology("order"), meshconfig.Config{}, 0)
	addr := m.inbound("payment-v1-0")

	r, err := rigDo(m.plainClient(), http.MethodGet, "http://"+addr+"/pay")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.code)
	r, err = rigDo(m.tlsClient(m.cert("order-v1-0"), mtPaymentID), http.MethodGet, "https://"+addr+"/pay")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.code)
	r, err = rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.code)

	seen := m.apps["payment-v1-0"].requests()
	require.Len(t, seen, 3)
	assert.Empty(t, seen[0].xfcc, "plaintext has no client certificate to forward")
	assert.Contains(t, seen[1].xfcc, ";URI="+mtOrderID)
	assert.Contains(t, seen[2].xfcc, ";URI="+mtOrderID)
	m.eventuallyCounter("payment-v1-0", "istio_requests_total", map[string]string{
		"reporter": "destination", "connection_security_policy": "none", "source_principal": "unknown",
	}, 1)
	m.eventuallyCounter("payment-v1-0", "istio_requests_total", map[string]string{
		"reporter": "destination", "connection_security_policy": "mutual_tls", "source_principal": mtOrderID,
	}, 2)
}

// DISABLE: only the plaintext chain. Auto mTLS follows the namespace's
// policy, not a workload's (BestEffortInferServiceMTLSMode), so a
// workload-level DISABLE needs a DestinationRule tls DISABLE on its callers.
func TestMTLSDisableAndAutoMTLS(t *testing.T) {
	t.Run("namespace DISABLE: plaintext in, auto mTLS off", func(t *testing.T) {
		m := newMTMesh(t, mtTopology("order"), meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{
			mtPA("default", "default", nil, security.PeerAuthentication_MutualTLS_DISABLE, nil),
		}}, 0)
		r, err := rigDo(m.tlsClient(m.cert("order-v1-0"), mtPaymentID), http.MethodGet, "https://"+m.inbound("payment-v1-0")+"/pay")
		refusedBeforeHTTP(t, r, err, "TLS to a DISABLE port")
		r, err = rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.code)
		seen := m.apps["payment-v1-0"].requests()
		require.Len(t, seen, 1)
		assert.Empty(t, seen[0].xfcc, "order's sidecar sent plaintext")
		m.eventuallyCounter("payment-v1-0", "istio_requests_total", map[string]string{
			"reporter": "destination", "connection_security_policy": "none", "source_workload": "order-v1",
		}, 1)
	})
	t.Run("workload DISABLE: auto mTLS still on, until a DestinationRule says DISABLE", func(t *testing.T) {
		m := newMTMesh(t, mtTopology("order"), meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{
			mtPA("payment", "default", map[string]string{"app": "payment"}, security.PeerAuthentication_MutualTLS_DISABLE, nil),
		}}, 0)
		r, err := rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, r.code, "mTLS to a plaintext-only port fails the connection")
		assert.Contains(t, r.flags, flagConnectFailure)
		assert.Empty(t, m.apps["payment-v1-0"].requests())

		dr := rigDR(&networking.TrafficPolicy{
			Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_DISABLE},
		})
		m.cfg.DestinationRules = []*networkingv1.DestinationRule{dr}
		m.converge(m.publish())
		r, err = rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.code, r.body)
		seen := m.apps["payment-v1-0"].requests()
		require.Len(t, seen, 1)
		assert.Empty(t, seen[0].xfcc)
	})
	t.Run("port-level STRICT over a workload DISABLE", func(t *testing.T) {
		m := newMTMesh(t, mtTopology("order"), meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{
			mtPA("payment", "default", map[string]string{"app": "payment"}, security.PeerAuthentication_MutualTLS_DISABLE,
				map[uint32]security.PeerAuthentication_MutualTLS_Mode{8080: security.PeerAuthentication_MutualTLS_STRICT}),
		}}, 0)
		r, err := rigDo(m.plainClient(), http.MethodGet, "http://"+m.inbound("payment-v1-0")+"/pay")
		refusedBeforeHTTP(t, r, err, "plaintext to a port-level STRICT port")
		r, err = rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.code, r.body)
	})
}

// Rotation under load: new certificates pushed over SDS while requests run
// through order's sidecar to payment's. Connections close when idle (the
// DestinationRule's idleTimeout), so new handshakes keep happening, and
// they must use the new certificates. Not one request may fail.
func TestMTLSRotationUnderLoad(t *testing.T) {
	dr := rigDR(&networking.TrafficPolicy{
		ConnectionPool: &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{IdleTimeout: durationpb.New(time.Millisecond)}},
	})
	cfg := meshStrict()
	cfg.DestinationRules = []*networkingv1.DestinationRule{dr}
	// Certificates that would expire during the test if they were not rotated.
	m := newMTMesh(t, mtTopology("order"), cfg, 20*time.Second)
	order, payment := m.proxies["order-v1-0"], m.proxies["payment-v1-0"]
	app := m.apps["payment-v1-0"]

	// The app signals when it sees the caller's certificate of a given hash.
	var wantHash string
	sawHash := make(chan struct{}, 1)
	warm := make(chan struct{}, 1)
	app.mu.Lock()
	app.notify = func(s rigSeen) {
		if len(app.seen) == 20 {
			warm <- struct{}{}
		}
		if wantHash != "" && strings.Contains(s.xfcc, "Hash="+wantHash) {
			select {
			case sawHash <- struct{}{}:
			default:
			}
		}
	}
	app.mu.Unlock()
	hashOf := func(c *ca.Cert) string {
		x, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		require.NoError(t, err)
		sum := sha256.Sum256(x.Certificate[0])
		return hex.EncodeToString(sum[:])
	}

	// The load: one request at a time, each on a new client connection,
	// paced so that the upstream connection has gone idle in between.
	stop := make(chan struct{})
	done := make(chan struct{})
	var sent, failed int
	var failures []string
	client := m.via("order-v1-0")
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			sent++
			r, err := rigDo(client, http.MethodPost, paymentURL)
			if err != nil || r.code != http.StatusOK {
				failed++
				if len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("%d %s %q %v", r.code, r.flags, r.body, err))
				}
			}
		}
	}()
	select {
	case <-warm:
	case <-time.After(rigWait):
		require.FailNow(t, "the load did not get going")
	}

	for round := 1; round <= 2; round++ {
		oldOrder, oldPayment := order.CertSerial(), payment.CertSerial()
		m.issue()
		h := hashOf(m.cert("order-v1-0"))
		app.mu.Lock()
		wantHash = h
		select { // a signal left from the last round
		case <-sawHash:
		default:
		}
		app.mu.Unlock()
		m.converge(m.publish())
		assert.NotEqual(t, oldOrder, order.CertSerial(), "round %d: order's certificate", round)
		assert.NotEqual(t, oldPayment, payment.CertSerial(), "round %d: payment's certificate", round)
		assert.Equal(t, m.cert("payment-v1-0").Serial.String(), payment.CertSerial())
		select {
		case <-sawHash:
		case <-time.After(rigWait):
			assert.Fail(t, "payment never saw order's new certificate", "round %d", round)
		}
		// A client of our own sees payment's new certificate.
		r, err := rigDo(m.tlsClient(m.cert("order-v1-0"), mtPaymentID), http.MethodGet, "https://"+m.inbound("payment-v1-0")+"/pay")
		require.NoError(t, err)
		assert.Equal(t, m.cert("payment-v1-0").Serial, r.tls.PeerCertificates[0].SerialNumber, "round %d: payment's server certificate", round)
	}
	close(stop)
	<-done
	t.Logf("%d requests, %d failed", sent, failed)
	assert.Positive(t, sent)
	assert.Zero(t, failed, "failures: %v", failures)
	v, err := m.scrape("order-v1-0", "meshbench_sds_certificate_rotations_total", nil)
	require.NoError(t, err)
	assert.Equal(t, 2.0, v)
}

// AuthorizationPolicy: DENY policies are judged first, then ALLOW ones;
// with an ALLOW policy in force, what it does not match is refused; the
// principal is the SPIFFE ID of the mTLS peer, never a header.
func TestAuthorizationPolicyEvaluation(t *testing.T) {
	cfg := meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{
		mtAP("payment-callers", &security.AuthorizationPolicy{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "payment"}},
			Action:   security.AuthorizationPolicy_ALLOW,
			Rules: []*security.Rule{{
				From: []*security.Rule_From{{Source: &security.Source{Principals: []string{"cluster.local/ns/default/sa/order"}}}},
				To:   []*security.Rule_To{{Operation: &security.Operation{Methods: []string{"GET", "POST"}, Paths: []string{"/pay", "/pay/*"}}}},
			}},
		}),
		mtAP("deny-blocked", &security.AuthorizationPolicy{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "payment"}},
			Action:   security.AuthorizationPolicy_DENY,
			Rules: []*security.Rule{{
				When: []*security.Condition{{Key: "request.headers[x-block]", Values: []string{"yes"}}},
			}},
		}),
	}}
	m := newMTMesh(t, mtTopology("audit", "order"), cfg, 0)
	order, audit := m.via("order-v1-0"), m.via("audit-v1-0")
	forged := "order-v1;default;order;v1;" + mtOrderID

	for _, c := range []struct {
		name   string
		client *http.Client
		method string
		url    string
		hdr    []string
		want   int
	}{
		{"order may pay", order, http.MethodPost, paymentURL, nil, http.StatusOK},
		{"order may read a refund", order, http.MethodGet, "http://" + rigPaymentHost + "/pay/refunds/7", nil, http.StatusOK},
		{"DENY is judged before ALLOW", order, http.MethodPost, paymentURL, []string{"x-block", "yes"}, http.StatusForbidden},
		{"ALLOW in force: an unmatched path is refused", order, http.MethodPost, "http://" + rigPaymentHost + "/admin", nil, http.StatusForbidden},
		{"ALLOW in force: an unmatched method is refused", order, http.MethodDelete, paymentURL, nil, http.StatusForbidden},
		{"audit is not order", audit, http.MethodPost, paymentURL, nil, http.StatusForbidden},
		{"audit cannot pass for order by header", audit, http.MethodPost, paymentURL, []string{HeaderPeerMetadata, forged}, http.StatusForbidden},
		{"plaintext has no principal", m.plainClient(), http.MethodPost, "http://" + m.inbound("payment-v1-0") + "/pay", []string{HeaderPeerMetadata, forged}, http.StatusForbidden},
		{"order's certificate, held by the test", m.tlsClient(m.cert("order-v1-0"), mtPaymentID), http.MethodPost, "https://" + m.inbound("payment-v1-0") + "/pay", nil, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := rigDo(c.client, c.method, c.url, c.hdr...)
			require.NoError(t, err)
			assert.Equal(t, c.want, r.code, r.body)
			if c.want == http.StatusForbidden {
				assert.Equal(t, "RBAC: access denied", r.body)
			}
		})
	}
	// Only the allowed requests reached the app.
	var paths []string
	for _, s := range m.apps["payment-v1-0"].requests() {
		paths = append(paths, s.method+" "+s.path)
	}
	assert.Equal(t, []string{"POST /pay", "GET /pay/refunds/7", "POST /pay"}, paths)
	m.eventuallyCounter("payment-v1-0", "istio_requests_total", map[string]string{
		"reporter": "destination", "response_code": "403", "source_principal": mtAuditID, "connection_security_policy": "mutual_tls",
	}, 2)
}

// The evaluation order of RBAC filters as xdsgen generates them for each
// combination of policies, judged without a network.
func TestRBACFiltersOrder(t *testing.T) {
	allowOrder := mtAP("allow-order", &security.AuthorizationPolicy{
		Action: security.AuthorizationPolicy_ALLOW,
		Rules:  []*security.Rule{{From: []*security.Rule_From{{Source: &security.Source{Principals: []string{"cluster.local/ns/default/sa/order"}}}}}},
	})
	denyBlocked := mtAP("deny-blocked", &security.AuthorizationPolicy{
		Action: security.AuthorizationPolicy_DENY,
		Rules:  []*security.Rule{{When: []*security.Condition{{Key: "request.headers[x-block]", Values: []string{"yes"}}}}},
	})
	allowNothing := mtAP("allow-nothing", &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_ALLOW})
	denyNothing := mtAP("deny-nothing", &security.AuthorizationPolicy{Action: security.AuthorizationPolicy_DENY})
	type req struct {
		principal string
		block     bool
	}
	reqs := []req{{mtOrderID, false}, {mtOrderID, true}, {mtAuditID, false}, {"", false}}
	for _, c := range []struct {
		name string
		aps  []*securityv1.AuthorizationPolicy
		want []bool // for reqs, in order
	}{
		{"no policy allows all", nil, []bool{true, true, true, true}},
		{"DENY only: the rest is allowed", []*securityv1.AuthorizationPolicy{denyBlocked}, []bool{true, false, true, true}},
		{"ALLOW only: the rest is refused", []*securityv1.AuthorizationPolicy{allowOrder}, []bool{true, true, false, false}},
		{"DENY before ALLOW", []*securityv1.AuthorizationPolicy{allowOrder, denyBlocked}, []bool{true, false, false, false}},
		{"an ALLOW policy without rules allows nothing", []*securityv1.AuthorizationPolicy{allowNothing}, []bool{false, false, false, false}},
		{"a DENY policy without rules denies nothing", []*securityv1.AuthorizationPolicy{denyNothing}, []bool{true, true, true, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg, err := registry.New(mtTopology("order"), mtAddrs())
			require.NoError(t, err)
			pay := reg.PodsOf("payment")[0]
			pay.AppAddr = "127.0.0.1:1"
			res := xdsgen.New(reg, meshconfig.Config{AuthorizationPolicies: c.aps}).ForSidecar(pay)
			var filters []*rbacConf
			for _, a := range res.Listeners {
				if a.GetName() != istionames.VirtualInboundListener {
					continue
				}
				lc, err := compileListener(a)
				require.NoError(t, err)
				filters = lc.chains[0].rbac
			}
			for i, rq := range reqs {
				r := httptest.NewRequest(http.MethodPost, "/pay", nil)
				if rq.block {
					r.Header.Set("x-block", "yes")
				}
				assert.Equal(t, c.want[i], allowed(filters, rbacInput{r: r, principal: rq.principal}), "principal %q block %v", rq.principal, rq.block)
			}
		})
	}
}

// mtAddrs hands out addresses for a registry that starts nothing.
func mtAddrs() func() (netip.Addr, error) {
	n := 0
	return func() (netip.Addr, error) {
		n++
		return netip.AddrFrom4([4]byte{127, 0, 9, byte(n)}), nil
	}
}

// Keys live in memory only: neither the CA nor the sidecar has any code
// that writes a file.
func TestNoPrivateKeyWrittenToDisk(t *testing.T) {
	writers := map[string]bool{
		"os.WriteFile": true, "os.Create": true, "os.CreateTemp": true, "os.OpenFile": true,
		"os.Mkdir": true, "os.MkdirAll": true, "os.MkdirTemp": true, "os.Rename": true, "os.Link": true, "os.Symlink": true,
		"ioutil.WriteFile": true, "ioutil.TempFile": true, "ioutil.TempDir": true,
	}
	files := 0
	for _, dir := range []string{".", filepath.Join("..", "ca")} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			files++
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			require.NoError(t, err)
			for _, imp := range f.Imports {
				assert.NotEqual(t, `"io/ioutil"`, imp.Path.Value, "%s imports io/ioutil", path)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); ok && writers[pkg.Name+"."+sel.Sel.Name] {
					t.Errorf("%s: %s.%s writes to the file system", fset.Position(sel.Pos()), pkg.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	assert.Greater(t, files, 10, "the scan found the sources")
}

// Secrets arrive over SDS: a sidecar holds no certificate before it and
// reports the serial of the one in force after.
func TestSDSSecretsInForce(t *testing.T) {
	m := newMTMesh(t, mtTopology("order"), meshconfig.Config{}, 0)
	sc := m.proxies["payment-v1-0"]
	assert.Equal(t, m.cert("payment-v1-0").Serial.String(), sc.CertSerial())
	assert.NotEmpty(t, sc.Version(resource.SecretType))
	set := sc.secrets()
	require.Contains(t, set.certs, xdsgen.SecretWorkload)
	require.Contains(t, set.roots, xdsgen.SecretRoot)
	assert.Equal(t, mtPaymentID, principalOf(set.certs[xdsgen.SecretWorkload].Leaf))
}

// x-forwarded-client-cert as Envoy sanitises it: the caller's sidecar
// drops an XFCC the app set (SANITIZE, the outbound default), a plaintext
// caller's XFCC is dropped inbound, and the inbound sidecar appends one
// element of its own for an mTLS caller (APPEND_FORWARD, as Istio sets it).
func TestXFCCIsSanitisedAndAppendedAsEnvoy(t *testing.T) {
	m := newMTMesh(t, mtTopology("order"), meshconfig.Config{}, 0)
	addr := m.inbound("payment-v1-0")
	forged := "x-forwarded-client-cert"
	const lie = `By=spiffe://cluster.local/ns/default/sa/payment;URI=spiffe://cluster.local/ns/default/sa/admin`

	r, err := rigDo(m.via("order-v1-0"), http.MethodPost, paymentURL, forged, lie)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.code)
	r, err = rigDo(m.plainClient(), http.MethodGet, "http://"+addr+"/pay", forged, lie)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.code)

	seen := m.apps["payment-v1-0"].requests()
	require.Len(t, seen, 2)
	assert.NotContains(t, seen[0].xfcc, "sa/admin", "the app's own XFCC never leaves its sidecar")
	assert.Equal(t, 1, strings.Count(seen[0].xfcc, "By="), "one element, the inbound sidecar's: %s", seen[0].xfcc)
	assert.Contains(t, seen[0].xfcc, ";URI="+mtOrderID)
	assert.Empty(t, seen[1].xfcc, "a plaintext caller's XFCC is dropped")
}
