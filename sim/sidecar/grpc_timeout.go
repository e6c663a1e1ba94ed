package sidecar

import (
	"net/http"
	"strconv"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// gRPC deadlines as Envoy takes them from a route. Istio sets both kinds
// (pilot/pkg/networking/core/route/route.go): max_grpc_timeout, the route
// timeout or 0, on every outbound route (setTimeout), and a
// max_stream_duration of 0 with grpc_timeout_header_max 0 on the inbound
// default route (BuildDefaultHTTPInboundRoute). Either way a gRPC caller's
// deadline (its grpc-timeout header) bounds the request in the proxy too.

// grpcTimeouts is the deadline part of a route action.
type grpcTimeouts struct {
	// max_grpc_timeout, when present: the router's timeout for a gRPC
	// request is its grpc-timeout (none: infinite) less grpcOffset, capped
	// by maxGRPC unless that is 0 (router.cc FilterUtility::finalTimeout).
	hasMaxGRPC bool
	maxGRPC    time.Duration
	grpcOffset time.Duration
	// max_stream_duration, when present, puts the route under Envoy's "new
	// timeouts" (RouteEntryImplBase::usingNewTimeouts): the router ignores
	// max_grpc_timeout, and the connection manager bounds the whole stream
	// (ConnectionManagerImpl::ActiveStream::refreshDurationTimeout).
	newTimeouts  bool
	hasMaxStream bool
	maxStream    time.Duration
	hasHeaderMax bool
	headerMax    time.Duration
	headerOffset time.Duration
}

func compileGRPCTimeouts(a *route.RouteAction) grpcTimeouts {
	var g grpcTimeouts
	//lint:ignore SA1019 Istio sets the deprecated field on every outbound route (route.go setTimeout), so Envoy acts on it
	if d := a.GetMaxGrpcTimeout(); d != nil {
		g.hasMaxGRPC, g.maxGRPC = true, d.AsDuration()
		//lint:ignore SA1019 as max_grpc_timeout
		g.grpcOffset = a.GetGrpcTimeoutOffset().AsDuration()
	}
	if m := a.GetMaxStreamDuration(); m != nil {
		g.newTimeouts = true
		if d := m.GetMaxStreamDuration(); d != nil {
			g.hasMaxStream, g.maxStream = true, d.AsDuration()
		}
		if d := m.GetGrpcTimeoutHeaderMax(); d != nil {
			g.hasHeaderMax, g.headerMax = true, d.AsDuration()
		}
		g.headerOffset = m.GetGrpcTimeoutHeaderOffset().AsDuration()
	}
	return g
}

// routerTimeout is the router's global timeout for a request
// (FilterUtility::finalTimeout): under new timeouts none of its own, for
// a gRPC request under max_grpc_timeout the caller's deadline, otherwise
// the route's timeout. 0 means none.
func (cr *compiledRoute) routerTimeout(grpc bool, h http.Header) time.Duration {
	g := &cr.deadlines
	switch {
	case g.newTimeouts:
		return 0
	case grpc && g.hasMaxGRPC:
		t, _ := parseGRPCTimeout(headerValue(h, headerGRPCTimeout))
		// The offset applies only where it leaves time (0 is infinite).
		if g.grpcOffset < t {
			t -= g.grpcOffset
		}
		if g.maxGRPC != 0 && (t == 0 || t > g.maxGRPC) {
			t = g.maxGRPC
		}
		return t
	}
	return cr.timeout
}

// streamDuration is the connection manager's bound on the whole stream
// under new timeouts (refreshDurationTimeout): the caller's grpc-timeout,
// capped by grpc_timeout_header_max unless 0, less its offset, where the
// route says to read the header; otherwise max_stream_duration (0: none).
// The HCM's own max_stream_duration, the fallback when the route sets
// none, is not read (docs/fidelity.md).
func (cr *compiledRoute) streamDuration(h http.Header) time.Duration {
	g := &cr.deadlines
	if !g.newTimeouts {
		return 0
	}
	if t, ok := parseGRPCTimeout(headerValue(h, headerGRPCTimeout)); ok && g.hasHeaderMax {
		if g.headerMax != 0 && t > g.headerMax {
			t = g.headerMax
		}
		if t != 0 && g.headerOffset < t {
			t -= g.headerOffset
		}
		return t
	}
	if g.hasMaxStream {
		return g.maxStream
	}
	return 0
}

// rewritesGRPCTimeout reports whether the router writes the time left into
// the upstream request's grpc-timeout (FilterUtility::setTimeoutHeaders:
// gRPC, old timeouts, max_grpc_timeout present).
func (cr *compiledRoute) rewritesGRPCTimeout(grpc bool) bool {
	return grpc && !cr.deadlines.newTimeouts && cr.deadlines.hasMaxGRPC
}

// expectedTimeout is what setTimeoutHeaders tells the upstream: the
// per-try timeout if there is one, else the global timeout, never more
// than the global time left (1 ms when none is left, since 0 would be
// infinite). 0: no timeout to tell.
func expectedTimeout(global, perTry, elapsed time.Duration) time.Duration {
	e := perTry
	if e == 0 {
		e = global
	}
	if e > 0 && global > 0 {
		if elapsed >= global {
			e = time.Millisecond
		} else {
			e = min(e, global-elapsed)
		}
	}
	return e.Truncate(time.Millisecond)
}

// parseGRPCTimeout reads a grpc-timeout header as Grpc::Common::getGrpcTimeout
// does (PROTOCOL-HTTP2.md: at most 8 digits and a unit H, M, S, m, u, n),
// in whole milliseconds, sub-millisecond units rounded up.
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	d := time.Duration(n)
	switch v[len(v)-1] {
	case 'H':
		d *= time.Hour
	case 'M':
		d *= time.Minute
	case 'S':
		d *= time.Second
	case 'm':
		d *= time.Millisecond
	case 'u':
		d *= time.Microsecond
	case 'n':
	default:
		return 0, false
	}
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d, true
}

// formatGRPCTimeout writes a timeout as Grpc::Common::toGrpcTimeout does:
// milliseconds, in the next larger unit while more than 8 digits.
func formatGRPCTimeout(d time.Duration) string {
	t := uint64(d / time.Millisecond)
	units := []struct {
		unit byte
		next uint64
	}{{'m', 1000}, {'S', 60}, {'M', 60}, {'H', 0}}
	i := 0
	for t > 99999999 && units[i].next != 0 {
		t /= units[i].next
		i++
	}
	if t > 99999999 {
		t = 99999999
	}
	return strconv.FormatUint(t, 10) + string(units[i].unit)
}
