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
	"sync/atomic"
	"time"
)

// The forward stage: attempts upstream under the route's timeout and
// retry policy, and the answer streamed back.

// forward sends the request upstream with the route's timeout and retry
// policy and the cluster's circuit breakers, as Envoy's router filter does,
// and streams the answer back.
func (s *Sidecar) forward(w http.ResponseWriter, r *http.Request, x *exchange, vh *vhost, cr *compiledRoute, u *upstream, shadows []shadow) {
	global := cr.routerTimeout(x.grpc, r.Header)
	ctx := x.stream.start(r.Context(), global, cr.streamDuration(r.Header), x.streamIdle)
	defer x.stream.stop()
	ur := s.prepare(r, x, cr)
	retry := cr.retry
	perTry := retry.armedPerTry(global)
	if r.Body != nil && r.Body != http.NoBody {
		b, err := readBody(r)
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
			ur.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
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
	var triedBuf [4]*host // a first try and Istio's default 2 retries fit without allocating
	tried := triedBuf[:0]
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
		if retry != nil && retry.previousHosts {
			tried = append(tried, h) // only previous_hosts reads it
		}
		if x.log != nil {
			x.log.upstream = h.addr
		}
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
			ur.header[headerAttemptCountKey] = attemptCountValue(attempt)
		}
		if cr.rewritesGRPCTimeout(x.grpc) {
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
		var as attemptSpan
		spawn := x.trace != nil && x.trace.conf.spawnUpstream
		if spawn {
			as = s.startAttempt(x, ur.header, attempt)
		}
		resp, failure := s.attempt(ctx, ur, h, u, perTry, release)
		if spawn {
			s.endAttempt(x, as, h, resp, failure)
		}
		if resp != nil {
			x.stream.touch() // the answer's headers are activity
		}
		if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 && x.reporter == "source" {
			x.dest.principal = h.principalOf(resp.TLS.PeerCertificates[0])
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

// readBody reads a request's body to keep it for retries and shadows:
// whole, or maxRetryBuffer+1 bytes of a larger one. A body of a declared
// length that fits is read into a buffer of that size, which the server's
// body reader holds to the length; others grow as they come.
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= maxRetryBuffer {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, maxRetryBuffer+1))
}

// endFailed answers for a request whose last attempt got no response.
func (s *Sidecar) endFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, x *exchange, f failure, retry *retryPolicy, attempt, maxAttempts int) {
	if r.Context().Err() != nil {
		x.code, x.flags = 0, flagDownstreamCancel
		return
	}
	if x.stream.ended(errStreamIdle) {
		// ConnectionManagerImpl::ActiveStream::onIdleTimeout: 408 before
		// any response header, with flag SI.
		s.local(w, x, http.StatusRequestTimeout, flagStreamIdle, "stream timeout")
		return
	}
	if x.stream.ended(errMaxStreamDuration) {
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
// release gives back the attempt's connection slot: at once on a failure,
// at the end of the answer's body otherwise (max_connections counts the
// connection busy until then).
func (s *Sidecar) attempt(ctx context.Context, ur *upstreamRequest, h *host, u *upstream, perTry time.Duration, release func()) (*http.Response, failure) {
	var cancel context.CancelFunc
	routeCtx := ctx
	if perTry > 0 {
		ctx, cancel = context.WithTimeout(ctx, perTry)
	}
	t := &try{end: streamEnd{cancel: cancel, release: release}}
	end, waiter := &t.end, &t.waiter
	// An upgrade is an HTTP/1.1 exchange end to end: Envoy's HTTP/2
	// upstream would carry it as an extended CONNECT, which is not done.
	h2 := !ur.upgrade && u.conf.Load().useH2(ur.downstreamH2)
	transport, scheme := u.transportFor(h, h2)
	var rt http.RoundTripper = transport
	if !h2 && !ur.upgrade && ur.stream == nil {
		rt, scheme = u.clientFor(h)
	}
	req, err := ur.newRequest(waiter.wait(ctx), scheme, h.addr, t)
	if err != nil {
		waiter.release()
		end.done()
		return nil, connectionTermination
	}
	// The request counts as active on its host (LEAST_REQUEST) until its
	// stream ends, as in Envoy, not when the answer's headers arrive.
	h.active.Add(1)
	resp, err := rt.RoundTrip(req)
	waiter.release()
	if err != nil {
		h.active.Add(-1)
		failure := classify(ctx, err, perTry > 0)
		if failure == perTryTimeout && routeCtx.Err() != nil {
			// The route's deadline came first (a retry's per-try timer
			// can outlast the route's time left); a route timeout is not
			// retried.
			failure = routeTimeout
		}
		s.log.Debug("upstream attempt failed", "cluster", u.name, "host", h.addr, "failure", failure, "err", err)
		end.done()
		return nil, failure
	}
	end.ReadCloser, end.h = resp.Body, h
	resp.Body = end
	return resp, noFailure
}

// streamEnd is an attempt's answer body: closing it ends the upstream
// stream, where Envoy gives back what the request held. One value holds
// all of it, so that an attempt allocates one wrapper and no closures.
type streamEnd struct {
	io.ReadCloser
	ended   atomic.Bool
	h       *host              // counted active until the end (LEAST_REQUEST), once the request went out
	cancel  context.CancelFunc // the per-try timeout's, or nil
	release func()             // the connection slot
}

func (c *streamEnd) Close() error {
	err := c.ReadCloser.Close()
	c.done()
	return err
}

// done gives back, once, what the attempt holds.
func (c *streamEnd) done() {
	if c.ended.Swap(true) {
		return
	}
	if c.cancel != nil {
		c.cancel()
	}
	if c.h != nil {
		c.h.active.Add(-1)
	}
	c.release()
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
		if k == headerConfigVersionKey && len(dst[k]) > 0 {
			continue
		}
		dst[k] = vs
	}
	x.code = resp.StatusCode
	if x.flags != flagNone {
		dst.Set(HeaderResponseFlags, x.flags)
	}
	w.WriteHeader(resp.StatusCode)
	if err := streamBody(w, resp.Body, x.stream.touch); err != nil {
		if x.grpc {
			// No grpc-status came: Istio's stats filter takes the one
			// Grpc::Common::getGrpcStatus infers from the response code
			// (httpToGrpcStatus: 200 is UNKNOWN).
			x.grpcStatus = strconv.Itoa(httpToGRPCStatus(x.code))
		}
		switch {
		case x.stream.ended(errStreamIdle):
			// Idle after the headers: the stream is reset, flag SI.
			x.flags = flagStreamIdle
		case x.stream.ended(errMaxStreamDuration):
			// Out of time after the headers: a local reply can no longer
			// be sent, so the stream is reset.
		case x.stream.ended(errRouteTimeout):
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
