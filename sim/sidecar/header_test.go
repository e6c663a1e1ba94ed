package sidecar

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// cloneHeader copies as http.Header.Clone does, nil values included, and
// leaves room for the headers the proxy adds: adding them allocates nothing.
func TestCloneHeaderLeavesRoomForPreparedHeaders(t *testing.T) {
	h := http.Header{"User-Agent": {"load"}, "Content-Type": {"application/json"}, "Accept": {"a", "b"}, "X-Empty": nil}
	c := cloneHeader(h, preparedHeaders)
	assert.Equal(t, h.Clone(), c)
	c["Accept"][0] = "changed"
	assert.Equal(t, "a", h["Accept"][0], "values are copied")

	added := []string{headerRequestIDKey, headerPeerIDKey, headerPeerMetadataKey, headerForwardedProto, headerAttemptCountKey, headerGRPCTimeout}
	assert.Len(t, added, preparedHeaders)
	assert.Zero(t, testing.AllocsPerRun(50, func() {
		c := cloneHeader(h, preparedHeaders)
		for _, k := range added {
			c[k] = forwardedProtoHTTP
		}
	})-testing.AllocsPerRun(50, func() { _ = cloneHeader(h, preparedHeaders) }), "the added headers grew the map")
}
