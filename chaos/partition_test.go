package chaos

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/meshconfig"
)

// viaSidecar sends a request to service as the app of pod would: to its
// sidecar's outbound listener, as a forward proxy.
func viaSidecar(t *testing.T, b *bench, pod, service, path string, timeout time.Duration) (int, error) {
	t.Helper()
	c, err := b.mesh.(*local.Mesh).AppClient(pod, timeout)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	resp, err := c.Post(fmt.Sprintf("http://%s.default.svc.cluster.local%s", service, path), "application/json", strings.NewReader("{}"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestPartitionCutsBothDirectionsAndNothingElse(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	require.Equal(t, 200, must(viaSidecar(t, b, "payment-v1-0", "order", "/orders", 2*time.Second)))

	rb := b.inject(Partition{}, b.target(Selector{Service: "order"}, Selector{Service: "payment"}))
	// order → payment: order's call hangs; the gateway → order leg is fine,
	// so the client's timeout, not a refused connection, ends the request.
	c := &http.Client{Transport: &http.Transport{}, Timeout: 400 * time.Millisecond}
	defer c.CloseIdleConnections()
	r := b.order(c)
	require.Error(t, r.err, "order's call to payment must not get through")
	// payment → order, as payment's app would call it through its sidecar.
	_, err := viaSidecar(t, b, "payment-v1-0", "order", "/orders", 400*time.Millisecond)
	require.Error(t, err, "payment's call to order must not get through")
	// Each order pod is cut from payment, as order's app would call it.
	code, err := viaSidecar(t, b, "order-v1-1", "payment", "/pay", 400*time.Millisecond)
	require.Error(t, err, "order-v1-1 is partitioned from payment too (code %d)", code)
	// Everyone else still reaches both: the gateway reaches payment directly.
	req, err := http.NewRequest(http.MethodPost, b.mesh.Entry().URL+"/pay", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Host = "payment.default.svc.cluster.local"
	resp, err := c.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	b.rollback(rb)
	allOK(t, b.orders(30))
	require.Equal(t, 200, must(viaSidecar(t, b, "payment-v1-0", "order", "/orders", 2*time.Second)))
	b.assertClean()
}

func must(code int, err error) int {
	if err != nil {
		return -1
	}
	return code
}
