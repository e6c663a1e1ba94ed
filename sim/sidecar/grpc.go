package sidecar

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// gRPC as Envoy's HTTP connection manager and router see it: which
// requests are gRPC, the status of their answers, and the local replies
// they get.

// isGRPCRequest is Grpc::Common::isGrpcRequestHeaders
// (source/common/grpc/common.cc hasGrpcContentType): content-type
// application/grpc, or application/grpc+<codec> or application/grpc;<params>.
func isGRPCRequest(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcStatusOf is the grpc-status of an answer: from its trailers, or from
// its headers for a trailers-only answer (Grpc::Common::getGrpcStatus reads
// whichever map it is given; Istio's stats filter reads the trailers, then
// the headers).
func grpcStatusOf(h, trailer http.Header) string {
	if g := headerValue(trailer, headerGRPCStatus); g != "" {
		return g
	}
	return headerValue(h, headerGRPCStatus)
}

// httpToGRPCStatus is Grpc::Utility::httpToGrpcStatus
// (source/common/grpc/status.cc): the gRPC status of an HTTP code, per
// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md.
func httpToGRPCStatus(code int) int {
	switch code {
	case http.StatusBadRequest:
		return 13 // INTERNAL
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return 12 // UNIMPLEMENTED
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

// grpcDeadlineExceeded is gRPC's DEADLINE_EXCEEDED.
const grpcDeadlineExceeded = 4

// grpcLocalReply answers a gRPC request as Envoy's sendLocalReply does
// (source/common/http/utility.cc, is_grpc): a trailers-only answer, HTTP
// 200 with content-type application/grpc, grpc-status the one given (the
// HTTP code's, httpToGRPCStatus, unless the caller names another) and
// grpc-message the body, percent-encoded.
func grpcLocalReply(w http.ResponseWriter, x *exchange, status int, body string) {
	g := strconv.Itoa(status)
	h := w.Header()
	h.Set("content-type", "application/grpc")
	h.Set("grpc-status", g)
	if body != "" {
		h.Set("grpc-message", grpcMessageEscape(body))
	}
	x.code, x.grpcStatus = http.StatusOK, g
	w.WriteHeader(http.StatusOK)
}

// grpcMessageEscape percent-encodes a grpc-message as the gRPC HTTP/2
// protocol asks (PROTOCOL-HTTP2.md, Status-Message).
func grpcMessageEscape(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "%20", " ")
}
