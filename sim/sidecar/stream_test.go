package sidecar

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Envoy streams a response as it arrives: a chunk the app flushed reaches
// the caller before the app has written the rest, and the app's trailers
// follow the body.
func TestResponsesStreamWithTheirTrailers(t *testing.T) {
	release := make(chan struct{})
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), meshconfig.Config{}, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "first\n")
			http.NewResponseController(w).Flush()
			<-release // the rest only once the caller has the first chunk
			_, _ = io.WriteString(w, "second\n")
			w.Header().Set("X-Checksum", "abc")
		},
	})
	req, err := http.NewRequest(http.MethodGet, "http://"+rigPaymentHost+"/pay", nil)
	require.NoError(t, err)
	lines := make(chan string, 2)
	trailer := make(chan string, 1)
	go func() {
		defer close(trailer)
		defer close(lines)
		resp, err := m.client.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		trailer <- resp.Trailer.Get("X-Checksum")
	}()
	select {
	case l := <-lines:
		assert.Equal(t, "first", l)
	case <-time.After(rigWait):
		close(release)
		t.Fatal("the first chunk did not arrive before the app wrote the rest: the sidecar buffers")
	}
	close(release)
	assert.Equal(t, "second", <-lines)
	_, open := <-lines
	require.False(t, open)
	assert.Equal(t, "abc", <-trailer, "the app's trailer reaches the caller")
}

// stream_idle_timeout (Envoy's default 5 min) ends a stream that shows no
// life: 408 "stream timeout" with flag SI before any response header
// (ConnectionManagerImpl::ActiveStream::onIdleTimeout), so with Istio's
// route timeout of 0 a hung upstream does not hang forever.
func TestStreamIdleTimeoutEndsAHungUpstream(t *testing.T) {
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), meshconfig.Config{}, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	})
	v := m.publish(func(res *xdsgen.Resources) {
		for _, l := range res.Listeners {
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					h := &hcm.HttpConnectionManager{}
					if f.GetTypedConfig().UnmarshalTo(h) != nil {
						continue
					}
					h.StreamIdleTimeout = durationpb.New(200 * time.Millisecond)
					a, err := anypb.New(h)
					require.NoError(t, err)
					f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
				}
			}
		}
	})
	m.converge(v)
	r := m.call()
	assert.Equal(t, http.StatusRequestTimeout, r.code)
	assert.Equal(t, "SI", r.flags)
	assert.Equal(t, "stream timeout", r.body)
}
