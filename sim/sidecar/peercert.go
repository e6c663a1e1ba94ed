package sidecar

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// What the request path derives from peer certificates, derived once and
// kept: a TLS connection's certificate cannot change while it is open, and
// a host presents the same certificate on every connection until it
// rotates. Hashing and formatting them on every request (the XFCC element
// is a SHA-256, a hex string and a Subject.String) cost more than the rest
// of the request's header work.

// connCert holds what was derived from one downstream connection's client
// certificate.
type connCert struct {
	principalOnce sync.Once
	principal     string
	// xfcc is the last XFCC element made, for the chain config it was made under.
	xfcc atomic.Pointer[xfccElement]
}

type xfccElement struct {
	conf  clientCertConf
	self  string
	value string
}

type connCertKey struct{}

// withConnCert gives the requests of a TLS connection a connCert to keep
// their certificate's facts in (for http.Server.ConnContext).
func withConnCert(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(*tls.Conn); ok {
		return context.WithValue(ctx, connCertKey{}, new(connCert))
	}
	return ctx
}

func connCertOf(r *http.Request) *connCert {
	cc, _ := r.Context().Value(connCertKey{}).(*connCert)
	return cc
}

// peerPrincipal is the SPIFFE ID of the request's client certificate, or "".
func peerPrincipal(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	cc := connCertOf(r)
	if cc == nil {
		return principalOf(r.TLS.PeerCertificates[0])
	}
	cc.principalOnce.Do(func() { cc.principal = principalOf(r.TLS.PeerCertificates[0]) })
	return cc.principal
}

// xfccElementOf is c.element for the request's client certificate chain,
// made once per connection and chain config.
func xfccElementOf(r *http.Request, c clientCertConf, self string) string {
	cc := connCertOf(r)
	if cc == nil {
		return c.element(self, r.TLS.PeerCertificates)
	}
	if e := cc.xfcc.Load(); e != nil && e.conf == c && e.self == self {
		return e.value
	}
	e := &xfccElement{conf: c, self: self, value: c.element(self, r.TLS.PeerCertificates)}
	cc.xfcc.Store(e)
	return e.value
}

// hostCert is the last certificate a host presented and its SPIFFE ID.
type hostCert struct {
	cert      *x509.Certificate
	principal string
}

// principalOf is the SPIFFE ID in the certificate an upstream host
// presented, reused while the host presents the same certificate.
func (h *host) principalOf(c *x509.Certificate) string {
	if last := h.cert.Load(); last != nil && (last.cert == c || bytes.Equal(last.cert.Raw, c.Raw)) {
		return last.principal
	}
	hc := &hostCert{cert: c, principal: principalOf(c)}
	h.cert.Store(hc)
	return hc.principal
}
