package xdsserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// TokenHeader is the gRPC metadata key a proxy's credential travels in, as
// Istio's agent sends its token to istiod ("authorization: Bearer …").
const TokenHeader = "authorization"

// Tokens issues and checks the credentials proxies present on their ADS
// streams: an HMAC of the node id under a key made for one mesh, so a token
// names exactly one node and cannot be forged without the key. istiod does
// the same job with Kubernetes service-account tokens or client
// certificates and refuses a node whose identity does not match what it
// asks for (pilot/pkg/xds/authentication.go); ours are minted by the
// runtime that starts the proxy, which hands each proxy only its own.
type Tokens struct{ key []byte }

// NewTokens makes a fresh key.
func NewTokens() (*Tokens, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return &Tokens{key: k}, nil
}

// Issue returns the token of node.
func (t *Tokens) Issue(node string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(node))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Valid reports whether token is node's.
func (t *Tokens) Valid(node, token string) bool {
	return token != "" && hmac.Equal([]byte(t.Issue(node)), []byte(token))
}

// errOutsider closes a stream whose caller is not the node it names.
var errOutsider = errors.New("xds: unauthenticated: the stream's credential does not name this node")

// streamAuth is what the server knows of one stream's caller.
type streamAuth struct {
	token, peer string
	node        string // pinned by the first request that passed
}

// Authenticate makes the server serve a stream only to the node its token
// names: every request's node id must match it. A request that fails is
// logged as an outsider's (with the peer address, not as the node's own) and
// ends its stream before anything is recorded or sent.
func (s *Server) Authenticate(t *Tokens) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = t
}

func (s *Server) onStreamOpen(ctx context.Context, id int64, _ string) error {
	a := &streamAuth{peer: "unknown"}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		a.peer = p.Addr.String()
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get(TokenHeader) {
			if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
				a.token = tok
			}
		}
	}
	s.streams.Store(id, a)
	return nil
}

func (s *Server) onStreamClosed(id int64, _ *core.Node) {
	s.streams.Delete(id)
	s.forgetStream(id)
}

// authorize checks a request against its stream's credential and returns
// the node id the request acts for.
func (s *Server) authorize(id int64, node string) (string, error) {
	s.mu.Lock()
	tokens := s.tokens
	s.mu.Unlock()
	v, _ := s.streams.Load(id)
	a, _ := v.(*streamAuth)
	if a == nil {
		a = &streamAuth{peer: "unknown"}
	}
	if node == "" {
		node = a.node // Envoy may send the node on the first request only
	}
	if tokens == nil {
		return node, nil
	}
	switch {
	case a.node != "" && node != a.node:
	case node != "" && tokens.Valid(node, a.token):
		a.node = node
		return node, nil
	}
	s.log.Warn("xds: refused an outsider", "peer", a.peer, "claimed_node", node, "has_token", a.token != "")
	s.outsiders.Add(1)
	return "", errOutsider
}

// Outsiders counts the requests refused for want of a matching credential.
func (s *Server) Outsiders() int64 { return s.outsiders.Load() }
