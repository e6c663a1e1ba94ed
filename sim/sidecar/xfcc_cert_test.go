package sidecar

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
)

// Istio's gateways ask for the client certificate and its chain in
// x-forwarded-client-cert: Cert= and Chain= carry them URL-encoded as PEM,
// after Hash and before Subject, in Envoy's order.
func TestXFCCCarriesCertAndChainAsEnvoy(t *testing.T) {
	authority, err := ca.New(istionames.TrustDomain, time.Hour)
	require.NoError(t, err)
	id, err := authority.WorkloadID("default", "order")
	require.NoError(t, err)
	c, err := authority.Issue(id)
	require.NoError(t, err)
	blk, _ := pem.Decode(c.CertPEM)
	require.NotNil(t, blk)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	chain := []*x509.Certificate{leaf, authority.Root()}

	el := clientCertConf{cert: true, chain: true, subject: true, uri: true}.element("spiffe://cluster.local/ns/istio-system/sa/gw", chain)
	parts := strings.Split(el, ";")
	require.GreaterOrEqual(t, len(parts), 5, el)
	assert.True(t, strings.HasPrefix(parts[2], "Cert=\""), el)
	assert.True(t, strings.HasPrefix(parts[3], "Chain=\""), el)
	assert.True(t, strings.HasPrefix(parts[4], "Subject="), el)

	decode := func(field string) []*x509.Certificate {
		v := strings.Trim(strings.SplitN(field, "=", 2)[1], `"`)
		raw, err := url.QueryUnescape(v)
		require.NoError(t, err)
		var out []*x509.Certificate
		rest := []byte(raw)
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			x, err := x509.ParseCertificate(b.Bytes)
			require.NoError(t, err)
			out = append(out, x)
		}
		return out
	}
	certs := decode(parts[2])
	require.Len(t, certs, 1)
	assert.True(t, certs[0].Equal(leaf))
	got := decode(parts[3])
	require.Len(t, got, 2)
	assert.True(t, got[0].Equal(leaf) && got[1].Equal(authority.Root()))
}
