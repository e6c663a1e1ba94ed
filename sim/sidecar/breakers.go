package sidecar

import (
	"context"
	"math"
)

// Circuit breakers: the cluster's connection, pending-request and retry
// limits.

// acquire takes a connection slot under max_connections, waiting as a
// pending request when none is free; it reports overflow when the pending
// queue is full (Envoy's HTTP/1.1 pool with circuit breakers). A nil release
// without overflow means ctx ended while waiting.
func (u *upstream) acquire(ctx context.Context) (release func(), overflow bool) {
	lim := u.conf.Load().limits
	if lim.maxConnections >= math.MaxUint32 {
		return func() {}, false
	}
	u.slotsMu.Lock()
	if u.slots == nil || u.slotsCap != lim.maxConnections {
		u.slots, u.slotsCap = make(chan struct{}, lim.maxConnections), lim.maxConnections
	}
	slots := u.slots
	u.slotsMu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, false
	default:
	}
	if uint64(u.pending.Load()) >= lim.maxPending {
		return nil, true
	}
	u.pending.Add(1)
	defer u.pending.Add(-1)
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, false
	case <-ctx.Done():
		return nil, false
	}
}

// reserveRetry counts a retry against max_retries.
func (u *upstream) reserveRetry() bool {
	if uint64(u.retries.Add(1)) > u.conf.Load().limits.maxRetries {
		u.retries.Add(-1)
		return false
	}
	return true
}
