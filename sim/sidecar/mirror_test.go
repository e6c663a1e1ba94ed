package sidecar

import (
	"bytes"
	"io"
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

func mirrorConfig(route *networking.HTTPRoute) meshconfig.Config {
	route.Route = rigRoute("v1")
	route.Mirror = &networking.Destination{Host: "payment", Subset: "v2"}
	route.MirrorPercentage = &networking.Percent{Value: 100}
	return meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{rigDR(nil, "v1", "v2")},
		VirtualServices:  []*networkingv1.VirtualService{rigVS(route)},
	}
}

// The shadow is the request as the router sends it upstream, after the
// route's rewrite and header edits (Envoy copies the final request headers
// for its shadows).
func TestMirrorCarriesTheRoutesRewriteAndHeaders(t *testing.T) {
	cfg := mirrorConfig(&networking.HTTPRoute{
		Rewrite: &networking.HTTPRewrite{Uri: "/v2/pay"},
		Headers: &networking.Headers{Request: &networking.Headers_HeaderOperations{Set: map[string]string{"x-route": "edited"}}},
	})
	got := make(chan *http.Request, 1)
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v2-0": func(_ http.ResponseWriter, r *http.Request) { got <- r },
	})
	r := m.call()
	require.Equal(t, http.StatusOK, r.code)
	select {
	case sh := <-got:
		primary := m.apps["payment-v1-0"].requests()
		require.Len(t, primary, 1)
		assert.NotEqual(t, "/pay", primary[0].path, "the route rewrites the path")
		assert.Equal(t, primary[0].path, sh.URL.Path, "the shadow has the primary's rewritten path")
		assert.Equal(t, "edited", sh.Header.Get("x-route"), "the route's header edit")
	case <-time.After(rigWait):
		t.Fatal("no shadow reached v2")
	}
}

// A body too large to buffer reaches the primary whole and is not
// mirrored: Envoy drops the shadows of a request whose body overflows the
// buffer (router.cc decodeData).
func TestMirrorNeverTruncatesThePrimaryBody(t *testing.T) {
	cfg := mirrorConfig(&networking.HTTPRoute{})
	primary := make(chan int, 1)
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(_ http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			primary <- int(n)
		},
	})
	body := bytes.Repeat([]byte("x"), 2*maxRetryBuffer)
	req, err := http.NewRequest(http.MethodPost, "http://"+rigPaymentHost+"/pay", bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := m.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, len(body), <-primary, "the primary got the whole body")
	assert.Zero(t, m.apps["payment-v2-0"].count(), "an overflowing body is not shadowed")
}
