package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// failure is why an attempt got no response, in the terms of Envoy's
// stream reset reasons and timeouts; it decides the retry and the flag.
type failure int

const (
	noFailure failure = iota
	// connectFailure: no connection could be made: refused, unreachable,
	// or a TLS handshake that failed (UF).
	connectFailure
	// connectionTermination: the connection closed or was reset before
	// the answer came (UC).
	connectionTermination
	// perTryTimeout: the attempt's own timeout passed (UT).
	perTryTimeout
	// routeTimeout: the route's timeout passed (UT; never retried).
	routeTimeout
)

func (f failure) String() string {
	switch f {
	case connectFailure:
		return "connect-failure"
	case connectionTermination:
		return "connection-termination"
	case perTryTimeout:
		return "per-try-timeout"
	case routeTimeout:
		return "timeout"
	}
	return ""
}

// flag is the response flag of an answer that ends on f.
func (f failure) flag() string {
	switch f {
	case connectFailure:
		return flagConnectFailure
	case perTryTimeout, routeTimeout:
		return flagUpstreamTimeout
	default:
		return flagUpstreamTermination
	}
}

// armedPerTry is the per-try timeout an attempt runs under, given the
// request's global timeout: none at or past the global timeout, as in
// Envoy's FilterUtility::finalTimeout (router.cc: "if per_try_timeout_ >=
// global_timeout_, per_try_timeout_ = 0"). Arming it anyway would race the
// route's timer and could count a retry for what is a route timeout.
func (p *retryPolicy) armedPerTry(global time.Duration) time.Duration {
	if p == nil || (global > 0 && p.perTryTimeout >= global) {
		return 0
	}
	return p.perTryTimeout
}

// classify names the failure of an attempt from its transport error.
// perTryArmed: the attempt ran under a per-try timeout.
func classify(ctx context.Context, err error, perTryArmed bool) failure {
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) && perTryArmed && ctx.Err() != nil:
		return perTryTimeout
	case ctx.Err() != nil:
		return routeTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &op) && op.Op == "dial":
		return connectFailure
	case isTLSError(err):
		// A failed handshake is a connection failure to Envoy (UF, "TLS error").
		return connectFailure
	default:
		return connectionTermination
	}
}

func isTLSError(err error) bool {
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	var cert *tls.CertificateVerificationError
	return errors.As(err, &rec) || errors.As(err, &alert) || errors.As(err, &cert) ||
		strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:")
}

// retriable applies Envoy's retry_on conditions (router filter docs, x-envoy-retry-on).
func (p *retryPolicy) retriable(resp *http.Response, f failure) bool {
	if f != noFailure {
		// Envoy's RetryStateImpl::wouldRetryFromReset: 5xx and gateway-error
		// retry any reset; connect-failure and reset-before-request a failure
		// before the request went out; reset any reset.
		switch f {
		case connectFailure:
			return p.on.has(retryConnectFailure | retryResetBeforeRequest | retry5xx | retryGatewayError | retryReset)
		case perTryTimeout:
			// A per-try timeout is a local reset of a request already sent
			// (router.cc onPerTryTimeoutCommon calls maybeRetryReset with
			// LocalReset): wouldRetryFromReset retries it under 5xx,
			// gateway-error and reset.
			return p.on.has(retry5xx | retryGatewayError | retryReset)
		case routeTimeout:
			return false
		default: // connectionTermination
			return p.on.has(retryReset | retry5xx | retryGatewayError)
		}
	}
	if resp == nil {
		return false
	}
	// A rate-limited answer is retried only under envoy-ratelimited, never as a 5xx.
	if headerValue(resp.Header, headerRateLimited) != "" {
		return p.on.has(retryEnvoyRateLimited)
	}
	c := resp.StatusCode
	switch {
	case p.on.has(retry5xx) && c >= 500:
		return true
	case p.on.has(retryGatewayError) && (c == 502 || c == 503 || c == 504):
		return true
	case p.on.has(retryRetriable4xx) && c == 409:
		return true
	case p.on.has(retryRetriableStatusCodes) && p.codes[c]:
		return true
	}
	if g := headerValue(resp.Header, headerGRPCStatus); g != "" {
		switch g {
		case "1":
			return p.on.has(retryCancelled)
		case "4":
			return p.on.has(retryDeadlineExceeded)
		case "8":
			return p.on.has(retryResourceExhausted)
		case "13":
			return p.on.has(retryInternal)
		case "14":
			return p.on.has(retryUnavailable)
		}
	}
	return false
}

// backoff is Envoy's jittered exponential back-off: before retry n, a random
// time in [0, (2^n − 1) × base], capped at the max interval.
func (p *retryPolicy) backoff(n int, rnd func() uint64) time.Duration {
	limit := p.backoffCeiling(n)
	if limit <= 0 {
		return 0
	}
	return time.Duration(rnd() % uint64(limit))
}

// hostPicks is how many hosts a selection with previous_hosts may pick:
// host_selection_retry_max_attempts counts the picks after the first, as
// ZoneAwareLoadBalancerBase::chooseHost makes hostSelectionRetryCount()+1.
func (p *retryPolicy) hostPicks() int { return p.hostSelectMax + 1 }

// backoffCeiling is the bound of the n-th back-off (n from 1) as Envoy's
// JitteredExponentialBackOffStrategy computes it (backoff_strategy.cc):
// the interval starts at the base and doubles after each back-off, and
// becomes the maximum once doubling would pass it: 25, 50, 100, 200, 250 ms
// for Envoy's default 25 ms base and 10× maximum. (The router docs'
// formula, (2^N-1)×base, is not what the code does.)
func (p *retryPolicy) backoffCeiling(n int) time.Duration {
	c := p.backoffBase
	for i := 1; i < n && c < p.backoffMax; i++ {
		if c > p.backoffMax/2 {
			c = p.backoffMax
		} else {
			c *= 2
		}
	}
	return min(c, p.backoffMax)
}
