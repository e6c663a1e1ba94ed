package sidecar

import (
	"crypto/tls"
	"net/http"
	"slices"
)

// HTTP/2 from downstream: the HTTP connection manager's codec_type AUTO,
// Envoy's default (http_connection_manager.proto), takes HTTP/1.1 and
// HTTP/2 on the same listener: HTTP/2 by ALPN h2 over TLS, or by the
// connection preface in plaintext (h2c with prior knowledge).

// downstreamProtocols are the protocols every HTTP listener serves.
func downstreamProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// inboundALPN is the ALPN of istiod's inbound DownstreamTlsContext on HTTP
// chains: h2, http/1.1 (pilot/pkg/networking/core/listener_builder.go,
// util.ALPNHttp).
var inboundALPN = []string{"h2", "http/1.1"}

// boringALPN makes a server TLS config choose its ALPN as BoringSSL does
// for Envoy: the first of the server's protocols the client offers, and,
// with no overlap, none at all instead of the handshake failure Go's
// server answers (crypto/tls negotiateALPN).
func boringALPN(cfg *tls.Config) *tls.Config {
	own := cfg.NextProtos
	cfg.NextProtos = nil
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		for _, p := range own {
			if slices.Contains(hello.SupportedProtos, p) {
				c := cfg.Clone()
				c.GetConfigForClient = nil
				c.NextProtos = []string{p}
				return c, nil
			}
		}
		return nil, nil
	}
	return cfg
}
