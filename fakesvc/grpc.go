package fakesvc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC echo service every instance also serves, on the same port as
// its HTTP API (HTTP/2 requests with content-type application/grpc): the
// service meshbench.fakesvc.v1.Echo, with a unary method and a
// server-streaming one. Messages are google.protobuf.BytesValue holding
// JSON: an EchoRequest in, a Reply (or one per streamed message) out, so
// no generated code is needed and any gRPC client can call it. The
// instance's latency and error rate apply as to HTTP requests; an injected
// error is the status Config.GRPCCode (UNAVAILABLE by default).

// Names of the echo service and its methods.
const (
	GRPCService      = "meshbench.fakesvc.v1.Echo"
	GRPCUnaryMethod  = "/" + GRPCService + "/Unary"
	GRPCStreamMethod = "/" + GRPCService + "/Stream"
)

// DefaultGRPCCode is the status of injected gRPC errors when Config.GRPCCode is 0.
const DefaultGRPCCode = codes.Unavailable

// EchoRequest is what a call of the echo service sends, as JSON in a BytesValue.
type EchoRequest struct {
	// Count is how many replies Stream sends (default 3).
	Count int `json:"count,omitempty"`
	// Interval is the pause between streamed replies (a Go duration, default none).
	Interval string `json:"interval,omitempty"`
}

// maxStream bounds the replies one Stream call sends.
const maxStream = 1000

type echoServer interface {
	unary(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
	stream(*wrapperspb.BytesValue, grpc.ServerStream) error
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: GRPCService,
	HandlerType: (*echoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := &wrapperspb.BytesValue{}
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(echoServer).unary(ctx, in)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, st grpc.ServerStream) error {
			in := &wrapperspb.BytesValue{}
			if err := st.RecvMsg(in); err != nil {
				return err
			}
			return srv.(echoServer).stream(in, st)
		},
	}},
}

// grpcEcho is the echo service of one Server.
type grpcEcho struct{ s *Server }

func newGRPCServer(s *Server) *grpc.Server {
	g := grpc.NewServer()
	g.RegisterService(&echoDesc, grpcEcho{s})
	return g
}

// Protocols are what an app's HTTP server takes: HTTP/1.1, and HTTP/2 with
// prior knowledge (h2c), which gRPC clients and sidecars speak to it.
func Protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// isGRPC reports whether an HTTP request is a gRPC call (gRPC over HTTP/2:
// content-type application/grpc[+proto|;...]).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return r.ProtoMajor == 2 && (ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") || strings.HasPrefix(ct, "application/grpc;"))
}

// begin sleeps the service time and decides the outcome: an error to
// return, or the Reply to fill in.
func (e grpcEcho) begin(ctx context.Context) (*Reply, error) {
	st := e.s.settings.Load()
	delay, fail := e.s.draw(st)
	if !pause(ctx, delay) {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	r := &Reply{
		Service: e.s.service, Version: e.s.version, Pod: e.s.pod, Namespace: e.s.namespace,
		Peer:      peerFromXFCC(md.Get("x-forwarded-client-cert")),
		Attempt:   attemptOf(md),
		RequestID: first("x-request-id"),
		Code:      http.StatusOK,
	}
	if fail {
		return nil, status.Errorf(st.grpcCode, "injected error %s", st.grpcCode)
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(HeaderService, e.s.service, HeaderVersion, e.s.version, HeaderPod, e.s.pod))
	return r, nil
}

func (e grpcEcho) unary(ctx context.Context, _ *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	r, err := e.begin(ctx)
	if err != nil {
		return nil, err
	}
	return replyMsg(r)
}

func (e grpcEcho) stream(in *wrapperspb.BytesValue, st grpc.ServerStream) error {
	var req EchoRequest
	if len(in.GetValue()) > 0 {
		if err := json.Unmarshal(in.GetValue(), &req); err != nil {
			return status.Errorf(codes.InvalidArgument, "request: %v", err)
		}
	}
	n := req.Count
	if n <= 0 {
		n = 3
	}
	if n > maxStream {
		return status.Errorf(codes.InvalidArgument, "count %d is over %d", n, maxStream)
	}
	var gap time.Duration
	if req.Interval != "" {
		d, err := time.ParseDuration(req.Interval)
		if err != nil || d < 0 {
			return status.Errorf(codes.InvalidArgument, "interval %q is not a duration", req.Interval)
		}
		gap = d
	}
	r, err := e.begin(st.Context())
	if err != nil {
		return err
	}
	for i := range n {
		if i > 0 && !pause(st.Context(), gap) {
			return status.FromContextError(st.Context().Err()).Err()
		}
		m, err := replyMsg(r)
		if err != nil {
			return err
		}
		if err := st.SendMsg(m); err != nil {
			return err
		}
	}
	return nil
}

func replyMsg(r *Reply) (*wrapperspb.BytesValue, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return wrapperspb.Bytes(b), nil
}

// checkGRPCCode validates an injected gRPC status: 0 means UNAVAILABLE; OK is not an error.
func checkGRPCCode(c int) (codes.Code, error) {
	if c == 0 {
		return DefaultGRPCCode, nil
	}
	if c < 1 || c > 16 {
		return 0, fmt.Errorf("fakesvc: gRPC error code %d must be in 1..16", c)
	}
	return codes.Code(c), nil
}
