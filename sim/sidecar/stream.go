package sidecar

import (
	"context"
	"errors"
	"time"
)

// stream is the proxy's hold on one downstream stream while it is
// forwarded: the context its attempts run under and the timers that may
// end it early. The router's global timeout (router.cc), the connection
// manager's max stream duration (grpc_timeout.go) and its
// stream_idle_timeout all cancel this one context, each with a cause of
// its own, so a stream pays for one cancelable context however many of
// them it has. The zero stream has none and never ends.
type stream struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	idle    *time.Timer
	idleFor time.Duration
	route   *time.Timer
	maxDur  *time.Timer
}

// The causes of a stream's end.
var (
	errRouteTimeout      = errors.New("upstream request timeout")
	errMaxStreamDuration = errors.New("downstream duration timeout")
	errStreamIdle        = errors.New("stream idle timeout")
)

// start arms the timers with a duration above 0 and returns the context
// they end: parent itself when there are none.
func (st *stream) start(parent context.Context, route, maxDuration, idle time.Duration) context.Context {
	if route <= 0 && maxDuration <= 0 && idle <= 0 {
		return parent
	}
	st.ctx, st.cancel = context.WithCancelCause(parent)
	if route > 0 {
		st.route = time.AfterFunc(route, func() { st.cancel(errRouteTimeout) })
	}
	if maxDuration > 0 {
		st.maxDur = time.AfterFunc(maxDuration, func() { st.cancel(errMaxStreamDuration) })
	}
	if idle > 0 {
		st.idleFor = idle
		st.idle = time.AfterFunc(idle, func() { st.cancel(errStreamIdle) })
	}
	return st.ctx
}

// touch is activity on the stream: the idle timeout starts over.
func (st *stream) touch() {
	if st.idle != nil {
		st.idle.Reset(st.idleFor)
	}
}

// ended reports whether the stream's context ended for cause.
func (st *stream) ended(cause error) bool {
	return st.ctx != nil && context.Cause(st.ctx) == cause
}

// stop disarms the timers and releases the context.
func (st *stream) stop() {
	for _, t := range []*time.Timer{st.route, st.maxDur, st.idle} {
		if t != nil {
			t.Stop()
		}
	}
	if st.cancel != nil {
		st.cancel(nil)
	}
}
