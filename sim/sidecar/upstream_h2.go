package sidecar

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"

	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// The upstream protocol of a cluster: HTTP/1.1, HTTP/2 (h2c in plaintext,
// h2 by ALPN over TLS), or the downstream request's own.

// upstreamProto is the upstream_protocol_options of a cluster's
// envoy.extensions.upstreams.http.v3.HttpProtocolOptions.
type upstreamProto int

const (
	// protoHTTP1 is Envoy's default: HTTP/1.1 upstream (http_protocol_options.proto,
	// "If this is not set, HTTP/1.1 is used").
	protoHTTP1 upstreamProto = iota
	// protoHTTP2 is explicit_http_config.http2_protocol_options: HTTP/2
	// always, with prior knowledge in plaintext (h2c).
	protoHTTP2
	// protoDownstream is use_downstream_protocol_config: HTTP/2 upstream
	// for an HTTP/2 request, HTTP/1.1 for an HTTP/1.x one.
	protoDownstream
)

// compileUpstreamProto reads the upstream protocol. auto_config (ALPN
// negotiated) and explicit HTTP/3 are refused: the sidecar does neither.
func compileUpstreamProto(po *httpopts.HttpProtocolOptions) (upstreamProto, error) {
	switch o := po.GetUpstreamProtocolOptions().(type) {
	case nil:
		return protoHTTP1, nil
	case *httpopts.HttpProtocolOptions_ExplicitHttpConfig_:
		switch o.ExplicitHttpConfig.GetProtocolConfig().(type) {
		case *httpopts.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions:
			return protoHTTP1, nil
		case *httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions:
			return protoHTTP2, nil
		}
		return 0, fmt.Errorf("explicit_http_config: only HTTP/1.1 and HTTP/2 are supported")
	case *httpopts.HttpProtocolOptions_UseDownstreamProtocolConfig:
		if o.UseDownstreamProtocolConfig.GetHttp3ProtocolOptions() != nil {
			return 0, fmt.Errorf("use_downstream_protocol_config: HTTP/3 is not supported")
		}
		return protoDownstream, nil
	}
	return 0, fmt.Errorf("upstream_protocol_options %T is not supported", po.GetUpstreamProtocolOptions())
}

// useH2 reports whether a request goes upstream over HTTP/2; downstreamH2
// says whether it came over HTTP/2.
func (c *clusterConf) useH2(downstreamH2 bool) bool {
	switch c.proto {
	case protoHTTP2:
		return true
	case protoDownstream:
		return downstreamH2
	}
	return false
}

// h2Protocols makes a transport speak HTTP/2 only: prior knowledge on
// http:// URLs (h2c), ALPN h2 on TLS.
func h2Protocols(t *http.Transport, tlsCfg *tls.Config) {
	var p http.Protocols
	if tlsCfg == nil {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP2(true)
	}
	t.Protocols = &p
}

// h2ALPN is the ALPN an HTTP/2 upstream connection offers in place of
// HTTP/1.1's: istiod gives an HTTP/2 cluster's mTLS istio-peer-exchange,
// istio, h2 (cluster_tls.go, util.ALPNInMeshH2WithMxc), and the istio.alpn
// filter sets istio-h2 for an HTTP/2 upstream request
// (proxy/source/extensions/filters/http/alpn) where it sets
// istio-http/1.1 for HTTP/1.1. h2 stays after istio-h2 (a divergence,
// docs/fidelity.md): Go's client speaks HTTP/2 over TLS only when ALPN
// says h2, where Envoy's explicit HTTP/2 codec needs no ALPN.
func h2ALPN(protos []string) []string {
	out := make([]string, 0, len(protos)+1)
	for _, p := range protos {
		switch p {
		case "http/1.1":
			out = append(out, "h2")
		case "istio-http/1.1":
			out = append(out, "istio-h2", "h2")
		default:
			out = append(out, p)
		}
	}
	if !slices.Contains(out, "h2") {
		out = append(out, "h2")
	}
	return out
}
