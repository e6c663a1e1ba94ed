package sidecar

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An UpstreamTlsContext without a validation context (DestinationRule
// tls.mode SIMPLE without caCertificates) connects to any server
// certificate: Envoy verifies nothing then.
func TestSimpleTLSWithoutCAConnects(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	s := &Sidecar{sessions: tls.NewLRUClientSessionCache(8)}
	tr := &http.Transport{TLSClientConfig: s.clientTLS(&upstreamTLS{sni: "example.com"})}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	require.NoError(t, err, "a self-signed server passes when nothing is to be verified")
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
}
