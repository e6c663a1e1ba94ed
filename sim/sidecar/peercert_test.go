package sidecar

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
)

// mtlsPipe makes a real mutual TLS handshake between two workloads of
// one CA and returns the server side's connection and its state.
func mtlsPipe(t *testing.T, authority *ca.CA, client, server string) (*tls.Conn, tls.ConnectionState) {
	t.Helper()
	pair := func(sa string) tls.Certificate {
		id, err := authority.WorkloadID("default", sa)
		require.NoError(t, err)
		c, err := authority.Issue(id)
		require.NoError(t, err)
		kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		require.NoError(t, err)
		return kp
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.Root())
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{pair(server)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots})
	cli := tls.Client(b, &tls.Config{Certificates: []tls.Certificate{pair(client)}, RootCAs: roots, InsecureSkipVerify: true})
	errs := make(chan error, 1)
	go func() { errs <- cli.Handshake() }()
	require.NoError(t, srv.Handshake())
	require.NoError(t, <-errs)
	return srv, srv.ConnectionState()
}

// A connection's certificate facts are derived on its first request and
// kept: the XFCC element and principal equal what the certificate gives,
// a chain config pushed while the connection is open gets its own element,
// and a connection's later requests derive nothing again.
func TestConnCertDerivedOncePerConnection(t *testing.T) {
	authority, err := ca.New(istionames.TrustDomain, time.Hour)
	require.NoError(t, err)
	conn, state := mtlsPipe(t, authority, "order", "payment")
	ctx := withConnCert(context.Background(), conn)
	request := func() *http.Request {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://payment/pay", nil)
		r.TLS = &state
		return r
	}
	const self = "spiffe://cluster.local/ns/default/sa/payment"
	appendFwd := clientCertConf{mode: hcm.HttpConnectionManager_APPEND_FORWARD, subject: true, uri: true, dns: true}
	gateway := clientCertConf{mode: hcm.HttpConnectionManager_SANITIZE_SET, subject: true, uri: true, cert: true, chain: true}

	assert.Equal(t, "spiffe://cluster.local/ns/default/sa/order", peerPrincipal(request()))
	assert.Equal(t, appendFwd.element(self, state.PeerCertificates), xfccElementOf(request(), appendFwd, self))
	assert.Equal(t, gateway.element(self, state.PeerCertificates), xfccElementOf(request(), gateway, self), "a pushed chain config gets its own element")
	assert.NotEqual(t, xfccElementOf(request(), appendFwd, self), xfccElementOf(request(), gateway, self))

	r := request()
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_ = peerPrincipal(r)
		_ = xfccElementOf(r, gateway, self)
	}), "derived again on a later request")

	// A plaintext connection has nothing to keep.
	plain, _ := net.Pipe()
	defer plain.Close()
	assert.NotNil(t, ctx.Value(connCertKey{}))
	assert.Nil(t, withConnCert(context.Background(), plain).Value(connCertKey{}))
}

// An upstream host's principal is kept while it presents the same
// certificate, on any connection (a certificate parsed anew), and follows
// a new one.
func TestHostPrincipalFollowsItsCertificate(t *testing.T) {
	authority, err := ca.New(istionames.TrustDomain, time.Hour)
	require.NoError(t, err)
	_, first := mtlsPipe(t, authority, "payment", "order")
	_, rotated := mtlsPipe(t, authority, "payment-v2", "order")
	h := &host{}
	cert := first.PeerCertificates[0]
	assert.Equal(t, "spiffe://cluster.local/ns/default/sa/payment", h.principalOf(cert))
	again, err := x509.ParseCertificate(cert.Raw)
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = h.principalOf(again) }), "the same certificate on another connection")
	assert.Equal(t, "spiffe://cluster.local/ns/default/sa/payment-v2", h.principalOf(rotated.PeerCertificates[0]))
	assert.Equal(t, "spiffe://cluster.local/ns/default/sa/payment", h.principalOf(again))
}
