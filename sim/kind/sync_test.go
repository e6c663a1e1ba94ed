package kind

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJudgeSync(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 10, 0, time.UTC)
	st := func(proxy, sent, acked, lastErr string, when time.Time) syncStatus {
		s := syncStatus{Proxy: proxy}
		s.Resources = map[string]struct {
			Sent      string    `json:"sent"`
			Acked     string    `json:"acked"`
			SentTime  time.Time `json:"sentTime"`
			LastError string    `json:"lastError"`
		}{"type.googleapis.com/envoy.config.cluster.v3.Cluster": {Sent: sent, Acked: acked, SentTime: when, LastError: lastErr}}
		return s
	}
	want := []string{"a.default", "b.default"}

	pending, missing, err := judgeSync(want, []syncStatus{st("a.default", "1", "1", "", at)}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"b.default"}, missing)
	assert.Empty(t, pending)

	// Node ids in either form; sent but not ACKed is pending.
	pending, missing, err = judgeSync(want, []syncStatus{st("sidecar~10.0.0.1~a.default~default.svc.cluster.local", "1", "1", "", at), st("b.default", "2", "1", "", at)}, time.Time{})
	require.NoError(t, err)
	assert.Empty(t, missing)
	assert.Contains(t, pending, "b.default has not ACKed Cluster")

	// Everything ACKed, but nothing sent since the change.
	pending, _, err = judgeSync(want, []syncStatus{st("a.default", "1", "1", "", at), st("b.default", "1", "1", "", at)}, at.Add(time.Second))
	require.NoError(t, err)
	assert.Contains(t, pending, "no push since the change")

	pending, missing, err = judgeSync(want, []syncStatus{st("a.default", "1", "1", "", at), st("b.default", "1", "1", "", at)}, at.Add(-time.Second))
	require.NoError(t, err)
	assert.Empty(t, pending)
	assert.Empty(t, missing)

	// A NACK fails with the proxy's reason.
	_, _, err = judgeSync(want, []syncStatus{st("a.default", "2", "1", "listener x: unsupported network filter", at)}, time.Time{})
	require.ErrorContains(t, err, "a.default refused istiod's Cluster: listener x: unsupported network filter")
}
