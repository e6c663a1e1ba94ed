package ca

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/istionames"
)

func parse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(p)
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func TestIssuesVerifiableSVIDWithIstioID(t *testing.T) {
	c, err := New(istionames.TrustDomain, time.Hour)
	require.NoError(t, err)
	id, err := c.WorkloadID("default", "order")
	require.NoError(t, err)
	require.Equal(t, "spiffe://cluster.local/ns/default/sa/order", id.String())
	cert, err := c.Issue(id)
	require.NoError(t, err)
	bundle := x509bundle.FromX509Authorities(c.TrustDomain(), []*x509.Certificate{c.Root()})
	got, _, err := x509svid.Verify([]*x509.Certificate{parse(t, cert.CertPEM)}, bundle)
	require.NoError(t, err)
	require.Equal(t, id, got)
	second, err := c.Issue(id)
	require.NoError(t, err)
	require.NotEqual(t, cert.Serial, second.Serial, "each issue has its own serial")
}

func TestForeignAndExpiredCertsFailVerification(t *testing.T) {
	mesh, err := New(istionames.TrustDomain, time.Hour)
	require.NoError(t, err)
	evil, err := New("evil.local", time.Hour)
	require.NoError(t, err)
	bundle := x509bundle.FromX509Authorities(mesh.TrustDomain(), []*x509.Certificate{mesh.Root()})

	foreign, err := evil.Issue(spiffeid.RequireFromString("spiffe://evil.local/ns/default/sa/order"))
	require.NoError(t, err)
	_, _, err = x509svid.Verify([]*x509.Certificate{parse(t, foreign.CertPEM)}, bundle)
	require.Error(t, err, "a cert from another trust domain must not verify")

	id, _ := mesh.WorkloadID("default", "order")
	expired, err := mesh.IssueExpired(id)
	require.NoError(t, err)
	_, _, err = x509svid.Verify([]*x509.Certificate{parse(t, expired.CertPEM)}, bundle)
	require.Error(t, err, "an expired cert must not verify")
}

func TestStoppedCAIssuesNothing(t *testing.T) {
	c, err := New(istionames.TrustDomain, time.Minute)
	require.NoError(t, err)
	id, _ := c.WorkloadID("default", "order")
	c.SetIssuing(false)
	_, err = c.Issue(id)
	require.ErrorIs(t, err, ErrStopped)
	c.SetIssuing(true)
	_, err = c.Issue(id)
	require.NoError(t, err)
}
