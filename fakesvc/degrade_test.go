package fakesvc

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A front end that degrades answers 200 with the parts it could get: a
// failed callee's part is missing (its call is recorded with its code),
// and the calls after it are still made.
func TestOnCalleeErrorDegrade(t *testing.T) {
	_, ratings := start(t, Config{Service: "ratings", ErrorRate: 1, ErrorStatus: 503})
	_, details := start(t, Config{Service: "details", Version: "v1"})
	rh, rp := hostPort(t, ratings.URL)
	dh, dp := hostPort(t, details.URL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	calls := []Call{{Service: rh, Port: rp}, {Service: "127.0.0.1", Port: gone}, {Service: dh, Port: dp}}

	_, page := start(t, Config{Service: "productpage", Calls: calls, OnCalleeError: OnCalleeErrorDegrade})
	resp, r := post(t, page.Client(), page.URL, nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 200, r.Code)
	assert.True(t, r.Degraded)
	assert.Contains(t, r.Error, "answered 503")
	require.Len(t, r.Calls, 3, "every call is made")
	assert.Equal(t, 503, r.Calls[0].Code)
	assert.Equal(t, 0, r.Calls[1].Code, "a transport failure")
	assert.Equal(t, "details", r.Calls[2].Service)
	assert.Equal(t, 200, r.Calls[2].Code)

	// Nothing fails: not degraded.
	_, whole := start(t, Config{Service: "productpage", Calls: calls[2:], OnCalleeError: OnCalleeErrorDegrade})
	_, r = post(t, whole.Client(), whole.URL, nil)
	assert.False(t, r.Degraded)
	assert.Empty(t, r.Error)

	// The default, fail, passes the first failure up and stops there.
	for _, mode := range []string{"", OnCalleeErrorFail} {
		_, strict := start(t, Config{Service: "productpage", Calls: calls, OnCalleeError: mode})
		resp, r = post(t, strict.Client(), strict.URL, nil)
		assert.Equal(t, 503, resp.StatusCode, mode)
		assert.False(t, r.Degraded)
		assert.Len(t, r.Calls, 1)
	}

	_, err = New(Config{Service: "x", OnCalleeError: "ignore"})
	assert.ErrorContains(t, err, `onCalleeError "ignore": want fail or degrade`)
	_, err = ParseFlags("fakesvc", []string{"-service", "x", "-on-callee-error", "degrade"}, nil)
	assert.NoError(t, err)
}
