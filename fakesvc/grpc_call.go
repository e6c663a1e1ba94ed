package fakesvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// Calls of protocol grpc: the echo service's Unary method of the called
// service, through the sidecar as an app's gRPC client sends it (HTTP/2
// with prior knowledge to the 15001 listener, :authority the service's
// name and port), or straight to the service without a sidecar.

// CallGRPC is Call.Protocol for a gRPC call.
const CallGRPC = "grpc"

// conn returns the client connection for a call's target, made once.
func (s *Server) conn(c Call) (*grpc.ClientConn, error) {
	authority := net.JoinHostPort(c.Service, strconv.Itoa(c.Port))
	if s.viaProxy || s.xds != nil {
		authority = net.JoinHostPort(istionames.ServiceHost(c.Service, s.namespace), strconv.Itoa(c.Port))
	}
	s.grpcMu.Lock()
	defer s.grpcMu.Unlock()
	if cc := s.grpcConns[authority]; cc != nil {
		return cc, nil
	}
	if s.xds != nil {
		cc, err := s.dialProxyless(c)
		if err != nil {
			return nil, err
		}
		if s.grpcConns == nil {
			s.grpcConns = map[string]*grpc.ClientConn{}
		}
		s.grpcConns[authority] = cc
		return cc, nil
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		switch {
		case strings.HasPrefix(s.proxy, "unix:"):
			return s.dialer.DialContext(ctx, "unix", strings.TrimPrefix(s.proxy, "unix:"))
		case s.proxy != "":
			return s.dialer.DialContext(ctx, "tcp", s.proxy)
		case s.resolve != nil:
			to, err := s.resolve(c.Service, c.Port)
			if err != nil {
				return nil, err
			}
			return s.dialer.DialContext(ctx, "tcp", to)
		}
		return s.dialer.DialContext(ctx, "tcp", addr)
	}
	// passthrough: the target is the :authority as written, and the
	// dialer, not a resolver, decides where the connection goes.
	cc, err := grpc.NewClient("passthrough:///"+authority,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dial))
	if err != nil {
		return nil, err
	}
	if s.grpcConns == nil {
		s.grpcConns = map[string]*grpc.ClientConn{}
	}
	s.grpcConns[authority] = cc
	return cc, nil
}

func (s *Server) closeGRPC() {
	s.grpcMu.Lock()
	defer s.grpcMu.Unlock()
	for k, cc := range s.grpcConns {
		_ = cc.Close()
		delete(s.grpcConns, k)
	}
}

// callGRPC makes one gRPC call, under the caller's deadline
// (Config.GRPCCall.Deadline), of the Unary or the Stream method. The
// status it returns is the HTTP status of the gRPC code (HTTPStatus), so
// that a failing gRPC callee fails the caller's HTTP answer as an HTTP one
// would.
func (s *Server) callGRPC(ctx context.Context, c Call, hdr http.Header) (Reply, int, error) {
	cc, err := s.conn(c)
	if err != nil {
		return Reply{Service: c.Service, Error: err.Error()}, 0, err
	}
	md := metadata.MD{}
	for k, vs := range hdr {
		md[strings.ToLower(k)] = vs
	}
	ctx = metadata.NewOutgoingContext(ctx, md)
	if d := s.grpcCall.Deadline.D(); d > 0 {
		// grpc-go sends the time left as grpc-timeout and ends the call
		// DEADLINE_EXCEEDED itself when it runs out.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var header, trailer metadata.MD
	var out *wrapperspb.BytesValue
	var messages *int
	if s.grpcCall.Method == registry.GRPCMethodStream {
		n := 0
		messages = &n
		out, err = s.streamGRPC(ctx, cc, &n, grpc.Header(&header), grpc.Trailer(&trailer))
	} else {
		out = &wrapperspb.BytesValue{}
		err = cc.Invoke(ctx, GRPCUnaryMethod, wrapperspb.Bytes(nil), out, grpc.Header(&header), grpc.Trailer(&trailer))
	}
	meta := func(k string) string {
		if v := header.Get(k); len(v) > 0 {
			return v[0]
		}
		if v := trailer.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	code := status.Code(err)
	g := int(code)
	if err != nil {
		st := status.Convert(err)
		return Reply{
			Service: c.Service, Code: HTTPStatus(code), GRPCStatus: &g, Messages: messages,
			Error:         fmt.Sprintf("gRPC %s: %s", code, st.Message()),
			ConfigVersion: meta(HeaderConfigVersion), Flags: meta(HeaderFlags),
		}, HTTPStatus(code), nil
	}
	var sub Reply
	if json.Unmarshal(out.GetValue(), &sub) != nil || sub.Service == "" {
		return Reply{Service: c.Service, Code: http.StatusBadGateway, GRPCStatus: &g, Messages: messages, Error: "a reply that is not the echo service's"}, http.StatusBadGateway, nil
	}
	sub.GRPCStatus, sub.Messages = &g, messages
	sub.ConfigVersion, sub.Flags = meta(HeaderConfigVersion), meta(HeaderFlags)
	return sub, http.StatusOK, nil
}

// streamGRPC calls the Stream method and reads every reply until the
// stream ends, counting them in n. It returns the first reply (every one
// names the same instance) and the stream's status (nil: OK).
func (s *Server) streamGRPC(ctx context.Context, cc *grpc.ClientConn, n *int, opts ...grpc.CallOption) (*wrapperspb.BytesValue, error) {
	// The stream ends with the call: its context is ours, cancelled on return.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, GRPCStreamMethod, opts...)
	if err != nil {
		return nil, err
	}
	req, err := json.Marshal(EchoRequest{Count: s.grpcCall.Count, Interval: intervalString(s.grpcCall.Interval.D())})
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(wrapperspb.Bytes(req)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var first *wrapperspb.BytesValue
	for {
		m := &wrapperspb.BytesValue{}
		err := st.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			return first, nil
		}
		if err != nil {
			return first, err
		}
		*n++
		if first == nil {
			first = m
		}
	}
}

func intervalString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// checkGRPCCall validates how an instance makes its gRPC calls.
func checkGRPCCall(g registry.GRPCCall) error {
	switch g.Method {
	case "", registry.GRPCMethodUnary, registry.GRPCMethodStream:
	default:
		return fmt.Errorf("fakesvc: gRPC method %q: want %s or %s", g.Method, registry.GRPCMethodUnary, registry.GRPCMethodStream)
	}
	if g.Deadline < 0 || g.Interval < 0 {
		return fmt.Errorf("fakesvc: gRPC deadline %s and interval %s must not be negative", g.Deadline.D(), g.Interval.D())
	}
	if g.Count < 0 || g.Count > maxStream {
		return fmt.Errorf("fakesvc: gRPC stream count %d must be in 0..%d", g.Count, maxStream)
	}
	return nil
}

// HTTPStatus is the HTTP status a gRPC code stands for, as Google's API
// design guide maps google.rpc.Code (google/rpc/code.proto), with 499 for
// CANCELLED.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
