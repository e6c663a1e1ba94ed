package sidecar

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The forward stage: attempts upstream under the route's timeout and
// retry policy, and the answer streamed back.

// forward sends the request upstream with the route's timeout and retry
// policy and the cluster's circuit breakers, as Envoy's router filter does,
// and streams the answer back.
func (s *Sidecar) forward(w http.ResponseWriter, r *http.Request, x *exchange, vh *vhost, cr *compiledRoute, u *upstream, shadows []shadow) {
	ctx := r.Context()
	global := cr.routerTimeout(x.grpc, r.Header)
	if global > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, global, errRouteTimeout)
		defer cancel()
	}
	if d := cr.streamDuration(r.Header); d > 0 {
		var stop context.CancelFunc
		ctx, x.duration, stop = newDurationTimer(ctx, d)
		defer stop()
	}
	if x.streamIdle > 0 {
		ctx, x.idle = newIdleTimer(ctx, x.streamIdle)
		defer x.idle.stop()
	}
	ur := s.prepare(r, x, cr)
	retry := cr.retry
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBuffer+1))
		if err != nil {
			x.code, x.flags = 0, flagDownstreamCancel
			return
		}
		if len(b) > maxRetryBuffer {
			// Too large to buffer: Envoy gives up retries and shadows for
			// such a request (router.cc decodeData, request_buffer_overflowed_).
			retry = nil
			shadows = nil
			ur.stream = io.MultiReader(bytes.NewReader(b), r.Body)
		} else {
			ur.body = b
		}
	}
	hashKey, hasKey := "", false
	if cr.hashHeader != "" {
		if vs := r.Header.Values(cr.hashHeader); len(vs) > 0 {
			hashKey, hasKey = strings.Join(vs, ","), true
		}
	}
	lim := u.conf.Load().limits
	if uint64(u.active.Load()) >= lim.maxRequests {
		s.metrics.pendingOverflow.WithLabelValues(u.name).Inc()
		s.local(w, x, http.StatusServiceUnavailable, flagOverflow, "")
		return
	}
	u.active.Add(1)
	defer u.active.Add(-1)

	maxAttempts := 1
	if retry != nil {
		maxAttempts += retry.numRetries
	}
	var tried []*host
	heldRetry := false
	defer func() {
		if heldRetry {
			u.retries.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		var skip func(*host) bool
		hostTries := 1
		if retry != nil && retry.previousHosts && len(tried) > 0 {
			skip = func(h *host) bool {
				for _, t := range tried {
					if t == h {
						return true
					}
				}
				return false
			}
			hostTries = retry.hostPicks()
		}
		var h *host
		if u.conf.Load().originalDst {
			// ORIGINAL_DST: the host is where the connection was going.
			if cc := connOf(r.Context()); cc != nil {
				h = u.originalDstHost(cc.info.dst)
			}
		} else {
			h = u.pick(skip, hostTries, hashKey, hasKey)
		}
		if h == nil {
			s.local(w, x, http.StatusServiceUnavailable, flagNoHealthy, "")
			return
		}
		tried = append(tried, h)
		if x.reporter == "destination" {
			x.dest = s.self
		} else {
			x.dest = peer{workload: h.workload, namespace: h.namespace, app: h.app, version: h.version, principal: "unknown"}
		}
		if attempt > 1 {
			// The transport may still read the last attempt's headers: a retry
			// gets a map of its own. The first attempt, by far the most common,
			// sends the prepared map itself.
			ur.header = ur.header.Clone()
		}
		if vh.attemptCount {
			ur.header.Set(HeaderAttemptCount, strconv.Itoa(attempt))
		}
		if cr.rewritesGRPCTimeout(x.grpc) {
			var perTry time.Duration
			if retry != nil {
				perTry = retry.perTryTimeout
			}
			// The first attempt tells the whole timeout (finalTimeout calls
			// setTimeoutHeaders with elapsed 0); a retry, the time left in
			// whole milliseconds (onRetry's elapsed since the request).
			var elapsed time.Duration
			if attempt > 1 {
				elapsed = time.Since(x.start).Truncate(time.Millisecond)
			}
			if e := expectedTimeout(global, perTry, elapsed); e > 0 {
				ur.header.Set("grpc-timeout", formatGRPCTimeout(e))
			}
		}
		release, overflow := u.acquire(ctx)
		if overflow {
			s.metrics.pendingOverflow.WithLabelValues(u.name).Inc()
			s.local(w, x, http.StatusServiceUnavailable, flagOverflow, "")
			return
		}
		if release == nil { // the request's time ran out while it waited for a connection
			s.endFailed(w, r, ctx, x, routeTimeout, retry, attempt, maxAttempts)
			return
		}
		if attempt == 1 {
			// The shadows go out once the request has a host and a
			// connection, as Envoy's router sends them with the upstream
			// request: a request that ends UH or UO is not mirrored.
			for _, sh := range shadows {
				s.mirror(ur, sh, global)
			}
		}
		resp, failure := s.attempt(ctx, ur, h, u, retry)
		if resp != nil {
			x.idle.touch() // the answer's headers are activity
		}
		if resp != nil {
			// The connection is busy until the answer's body is whole:
			// max_connections counts it to the stream's end.
			onStreamEnd(resp, release)
		} else {
			release()
		}
		if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 && x.reporter == "source" {
			x.dest.principal = principalOf(resp.TLS.PeerCertificates[0])
		}
		switch {
		case failure != noFailure && r.Context().Err() != nil:
			// The caller went away: Envoy resets the upstream request and
			// records no outlier result for it (router.cc onDestroy), so a
			// caller that gives up never gets a healthy host ejected.
		case failure != noFailure:
			u.observe(h, 503)
		default:
			u.observe(h, resp.StatusCode)
		}
		// The max_retries slot of the previous retry is held until this
		// attempt is judged (RetryStateImpl::shouldRetry calls resetRetry).
		if heldRetry {
			u.retries.Add(-1)
			heldRetry = false
		}
		retriable := attempt < maxAttempts && retry != nil && retry.retriable(resp, failure)
		if retriable && !u.reserveRetry() {
			// max_retries reached: the retry is not sent
			// (upstream_rq_retry_overflow), and the router flags the
			// answer UO (RetryStatus::NoOverflow in router.cc).
			s.metrics.retryOverflow.WithLabelValues(u.name).Inc()
			retriable = false
			x.retryOverflow = true
		}
		if !retriable {
			if failure != noFailure {
				s.endFailed(w, r, ctx, x, failure, retry, attempt, maxAttempts)
				return
			}
			if retry != nil && attempt == maxAttempts && attempt > 1 && retry.retriable(resp, noFailure) {
				x.flags = flagRetryLimit
			}
			if x.retryOverflow {
				x.flags = flagOverflow
			}
			s.copyResponse(ctx, w, resp, x, cr)
			return
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		x.retries++
		s.metrics.retries.WithLabelValues(u.name).Inc()
		heldRetry = true
		ok := sleepCtx(ctx, retry.backoff(attempt, s.randUint64))
		if !ok {
			s.endFailed(w, r, ctx, x, routeTimeout, retry, attempt, maxAttempts)
			return
		}
	}
}

// endFailed answers for a request whose last attempt got no response.
func (s *Sidecar) endFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, x *exchange, f failure, retry *retryPolicy, attempt, maxAttempts int) {
	if r.Context().Err() != nil {
		x.code, x.flags = 0, flagDownstreamCancel
		return
	}
	if x.idle.fired() {
		// ConnectionManagerImpl::ActiveStream::onIdleTimeout: 408 before
		// any response header, with flag SI.
		s.local(w, x, http.StatusRequestTimeout, flagStreamIdle, "stream timeout")
		return
	}
	if x.duration.fired() {
		// ConnectionManagerImpl::ActiveStream::onStreamMaxDurationReached:
		// 504 for a request received whole (408 otherwise; this sidecar
		// has the body before it forwards), gRPC DEADLINE_EXCEEDED, no
		// response flag.
		s.localGRPC(w, x, http.StatusGatewayTimeout, grpcDeadlineExceeded, "downstream duration timeout")
		return
	}
	if ctx.Err() != nil {
		s.local(w, x, http.StatusGatewayTimeout, flagUpstreamTimeout, "")
		return
	}
	flag := f.flag()
	if x.retryOverflow {
		flag += "," + flagOverflow // UF, UC and UT come before UO in Envoy's flag order
	}
	if retry != nil && attempt == maxAttempts && attempt > 1 && retry.retriable(nil, f) {
		flag += "," + flagRetryLimit
	}
	code := http.StatusServiceUnavailable
	if f == perTryTimeout {
		code = http.StatusGatewayTimeout
	}
	s.local(w, x, code, flag, "")
}

// attempt makes one try; the failure says why it got no response.
func (s *Sidecar) attempt(ctx context.Context, ur *upstreamRequest, h *host, u *upstream, retry *retryPolicy) (*http.Response, failure) {
	var cancel context.CancelFunc = func() {}
	if retry != nil && retry.perTryTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, retry.perTryTimeout)
	}
	var rb io.Reader = http.NoBody
	switch {
	case ur.body != nil:
		rb = bytes.NewReader(ur.body)
	case ur.stream != nil:
		rb = ur.stream
	}
	// An upgrade is an HTTP/1.1 exchange end to end: Envoy's HTTP/2
	// upstream would carry it as an extended CONNECT, which is not done.
	transport, scheme := u.transportFor(h, !ur.upgrade && u.conf.Load().useH2(ur.downstreamH2))
	rctx, connWaitDone := waitForConn(ctx)
	req, err := http.NewRequestWithContext(rctx, ur.method, scheme+h.addr+ur.uri, rb)
	if err != nil {
		connWaitDone()
		cancel()
		return nil, connectionTermination
	}
	req.Header = ur.header
	req.Host = ur.host
	if ur.body != nil {
		req.ContentLength = int64(len(ur.body))
	}
	// The request counts as active on its host (LEAST_REQUEST) until its
	// stream ends, as in Envoy, not when the answer's headers arrive.
	h.active.Add(1)
	resp, err := transport.RoundTrip(req)
	connWaitDone()
	if err != nil {
		h.active.Add(-1)
		failure := classify(ctx, err, retry)
		s.log.Debug("upstream attempt failed", "cluster", u.name, "host", h.addr, "failure", failure, "err", err)
		cancel()
		return nil, failure
	}
	onStreamEnd(resp, func() {
		cancel()
		h.active.Add(-1)
	})
	return resp, noFailure
}

// onStreamEnd runs done once when resp's body is closed: the end of the
// upstream stream, where Envoy gives back what the request held.
func onStreamEnd(resp *http.Response, done func()) {
	resp.Body = &streamEnd{ReadCloser: resp.Body, done: done}
}

type streamEnd struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (c *streamEnd) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errRouteTimeout is the cause of a request's context when the router's
// global timeout ends it.
var errRouteTimeout = errors.New("upstream request timeout")

// copyResponse sends the answer downstream as it streams in. ctx is the
// request's under the router's timeout, which runs until the response is
// complete, body and trailers (router.cc onRequestComplete arms
// response_timeout_, cleared only when the upstream response ends).
func (s *Sidecar) copyResponse(ctx context.Context, w http.ResponseWriter, resp *http.Response, x *exchange, cr *compiledRoute) {
	if x.upgrade != "" && resp.StatusCode == http.StatusSwitchingProtocols {
		if err := s.serveUpgraded(w, resp, x, cr); err != nil {
			s.log.Debug("upgrade failed", "upgrade", x.upgrade, "err", err)
			x.code, x.flags = resp.StatusCode, flagUpstreamTermination
			if errors.Is(err, errUpgradeDownstream) {
				// HTTP/2 downstream: there is no connection to hand over.
				s.local(w, x, http.StatusForbidden, flagNone, "")
			}
		}
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for _, h := range cr.headers.respRemove {
		resp.Header.Del(h)
	}
	for _, kv := range cr.headers.respSet {
		resp.Header.Set(kv[0], kv[1])
	}
	for _, kv := range cr.headers.respAdd {
		resp.Header.Add(kv[0], kv[1])
	}
	dst := w.Header()
	for k, vs := range resp.Header {
		if k == HeaderConfigVersion && dst.Get(k) != "" {
			continue
		}
		dst[k] = vs
	}
	x.code = resp.StatusCode
	if x.flags != flagNone {
		dst.Set(HeaderResponseFlags, x.flags)
	}
	w.WriteHeader(resp.StatusCode)
	if err := streamBody(w, resp.Body, x.idle.touch); err != nil {
		if x.grpc {
			// No grpc-status came: Istio's stats filter takes the one
			// Grpc::Common::getGrpcStatus infers from the response code
			// (httpToGrpcStatus: 200 is UNKNOWN).
			x.grpcStatus = strconv.Itoa(httpToGRPCStatus(x.code))
		}
		switch {
		case x.idle.fired():
			// Idle after the headers: the stream is reset, flag SI.
			x.flags = flagStreamIdle
		case x.duration.fired():
			// Out of time after the headers: a local reply can no longer
			// be sent, so the stream is reset.
		case errors.Is(context.Cause(ctx), errRouteTimeout):
			// The route timeout after the headers: onResponseTimeout
			// resets the upstream request and flags UT, and its local
			// reply (onUpstreamAbort → sendLocalReply) becomes a reset of
			// the downstream stream, since headers were sent
			// (FilterManager::sendLocalReply: "Prior headers have already
			// been sent"). A stream cut so keeps its 200.
			x.flags = flagUpstreamTimeout
		default:
			// The upstream failed mid-body: onUpstreamReset →
			// onUpstreamAbort resets the downstream stream as well,
			// rather than end it as if the body were whole.
			if x.flags == flagNone {
				x.flags = flagUpstreamTermination
			}
		}
		// Envoy's HTTP/2 codec resets with NO_ERROR (reasonToReset of
		// LocalReset), Go's server with INTERNAL_ERROR (handlerPanicRST):
		// grpc-go maps both to INTERNAL (http2ErrConvTab); an HTTP/1.1
		// downstream has its connection closed in both.
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vs
	}
	if x.grpc {
		x.grpcStatus = grpcStatusOf(resp.Header, resp.Trailer)
	}
}

var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// streamBody copies an upstream body downstream as it arrives, as Envoy's
// router streams data: a chunk that is not the body's last is flushed at
// once, so a caller gets a server's first chunk without waiting for the
// rest. The last chunk goes out when the handler returns.
func streamBody(w http.ResponseWriter, body io.Reader, activity func()) error {
	bp := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			activity()
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if err == nil {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// idleTimer is an HCM's stream_idle_timeout for one stream: it cancels the
// stream's context when no activity came for d. A nil timer is never idle.
type idleTimer struct {
	d      time.Duration
	t      *time.Timer
	cancel context.CancelCauseFunc
	ctx    context.Context
}

var errStreamIdle = errors.New("stream idle timeout")

func newIdleTimer(parent context.Context, d time.Duration) (context.Context, *idleTimer) {
	ctx, cancel := context.WithCancelCause(parent)
	it := &idleTimer{d: d, cancel: cancel, ctx: ctx}
	it.t = time.AfterFunc(d, func() { cancel(errStreamIdle) })
	return ctx, it
}

func (it *idleTimer) touch() {
	if it != nil {
		it.t.Reset(it.d)
	}
}

func (it *idleTimer) fired() bool {
	return it != nil && errors.Is(context.Cause(it.ctx), errStreamIdle)
}

func (it *idleTimer) stop() {
	it.t.Stop()
	it.cancel(nil)
}
