package sidecar

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshbench/meshbench/sim/istionames"
)

const tlsSocketName = "envoy.transport_sockets.tls"

// envoyCurves are Envoy's default ECDH curves.
var envoyCurves = []tls.CurveID{tls.X25519, tls.CurveP256}

// downstreamTLS is a compiled DownstreamTlsContext.
type downstreamTLS struct {
	certSecret, rootSecret string
	requireClientCert      bool
	sanPrefixes            []string // the peer's SPIFFE ID must start with one, when set
}

// upstreamTLS is a compiled UpstreamTlsContext.
type upstreamTLS struct {
	certSecret, rootSecret string // empty cert: no client certificate (SIMPLE)
	sans                   []string
	sanPrefixes            []string
	sni                    string
	alpn                   []string // common_tls_context.alpn_protocols, offered by tcp_proxy
}

func compileDownstreamTLS(ts *core.TransportSocket) (*downstreamTLS, error) {
	if ts.GetName() != tlsSocketName {
		return nil, nil // raw_buffer and friends: plaintext
	}
	ctx := &tlsv3.DownstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, err
	}
	cert, root, _, prefixes, err := commonSecrets(ctx.GetCommonTlsContext())
	if err != nil {
		return nil, err
	}
	if cert == "" {
		return nil, errors.New("downstream TLS without a certificate")
	}
	return &downstreamTLS{certSecret: cert, rootSecret: root, requireClientCert: ctx.GetRequireClientCertificate().GetValue(), sanPrefixes: prefixes}, nil
}

func commonSecrets(c *tlsv3.CommonTlsContext) (cert, root string, sans, prefixes []string, err error) {
	for _, s := range c.GetTlsCertificateSdsSecretConfigs() {
		cert = s.GetName()
	}
	if len(c.GetTlsCertificates()) > 0 {
		return "", "", nil, nil, errors.New("inline tls_certificates are not supported; use SDS")
	}
	if c.GetValidationContext() != nil {
		return "", "", nil, nil, errors.New("an inline validation_context is not supported; use SDS")
	}
	if cv := c.GetCombinedValidationContext(); cv != nil {
		root = cv.GetValidationContextSdsSecretConfig().GetName()
		for _, m := range cv.GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
			if _, ok := m.GetMatcher().GetMatchPattern().(*matcherv3.StringMatcher_Exact); !ok {
				return "", "", nil, nil, fmt.Errorf("subject alt name matcher %T is not supported (only exact)", m.GetMatcher().GetMatchPattern())
			}
			sans = append(sans, m.GetMatcher().GetExact())
		}
		// The deprecated match_subject_alt_names, which istiod still sends;
		// Envoy matches it against every SAN type as the typed ones above.
		//lint:ignore SA1019 istiod still sends the deprecated field
		for _, m := range cv.GetDefaultValidationContext().GetMatchSubjectAltNames() {
			switch p := m.GetMatchPattern().(type) {
			case *matcherv3.StringMatcher_Exact:
				sans = append(sans, p.Exact)
			case *matcherv3.StringMatcher_Prefix:
				// istiod's inbound contexts accept the mesh's trust domain
				// (prefix "spiffe://cluster.local/").
				prefixes = append(prefixes, p.Prefix)
			default:
				return "", "", nil, nil, fmt.Errorf("subject alt name matcher %T is not supported (only exact)", m.GetMatchPattern())
			}
		}
	}
	if v := c.GetValidationContextSdsSecretConfig(); v != nil {
		root = v.GetName()
	}
	return cert, root, sans, prefixes, nil
}

func upstreamFromSocket(ts *core.TransportSocket) (*upstreamTLS, error) {
	if ts.GetName() != tlsSocketName {
		return nil, nil
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, err
	}
	cert, root, sans, prefixes, err := commonSecrets(ctx.GetCommonTlsContext())
	if err != nil {
		return nil, err
	}
	return &upstreamTLS{certSecret: cert, rootSecret: root, sans: sans, sanPrefixes: prefixes, sni: ctx.GetSni(), alpn: ctx.GetCommonTlsContext().GetAlpnProtocols()}, nil
}

// compileUpstreamTLS reads transport_socket, or transport_socket_matches
// keyed on tlsMode=istio as Istio's auto mTLS sets them.
func compileUpstreamTLS(cc *clusterConf, c *cluster.Cluster) error {
	if ts := c.GetTransportSocket(); ts != nil {
		u, err := upstreamFromSocket(ts)
		cc.tls = u
		return err
	}
	for _, m := range c.GetTransportSocketMatches() {
		if m.GetMatch().GetFields()["tlsMode"].GetStringValue() != "istio" {
			continue
		}
		u, err := upstreamFromSocket(m.GetTransportSocket())
		if err != nil {
			return err
		}
		cc.tls, cc.tlsByMatch = u, true
	}
	return nil
}

// secretSet is the SDS secrets in force; handshakes read it, so a rotation
// applies to the next connection without touching open ones.
type secretSet struct {
	certs  map[string]*tls.Certificate
	roots  map[string]*x509bundle.Bundle
	serial map[string]string // certificate serial by secret name, for tests and metrics
}

func (s *Sidecar) secrets() *secretSet {
	if v := s.secretsV.Load(); v != nil {
		return v
	}
	return &secretSet{}
}

// applySecrets validates and swaps in a whole SDS response.
func (s *Sidecar) applySecrets(res []*anypb.Any) error {
	next := &secretSet{certs: map[string]*tls.Certificate{}, roots: map[string]*x509bundle.Bundle{}, serial: map[string]string{}}
	for _, a := range res {
		sec := &tlsv3.Secret{}
		if err := a.UnmarshalTo(sec); err != nil {
			return err
		}
		switch t := sec.GetType().(type) {
		case *tlsv3.Secret_TlsCertificate:
			certPEM := t.TlsCertificate.GetCertificateChain().GetInlineBytes()
			keyPEM := t.TlsCertificate.GetPrivateKey().GetInlineBytes()
			c, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return fmt.Errorf("secret %s: %w", sec.GetName(), err)
			}
			leaf, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				return fmt.Errorf("secret %s: %w", sec.GetName(), err)
			}
			c.Leaf = leaf
			next.certs[sec.GetName()] = &c
			next.serial[sec.GetName()] = leaf.SerialNumber.String()
		case *tlsv3.Secret_ValidationContext:
			roots, err := parseCerts(t.ValidationContext.GetTrustedCa().GetInlineBytes())
			if err != nil || len(roots) == 0 {
				return fmt.Errorf("secret %s: no CA certificates: %v", sec.GetName(), err)
			}
			// The bundle is keyed by the roots' trust domain (their URI SAN), the mesh's by default.
			td := spiffeid.RequireTrustDomainFromString(istionames.TrustDomain)
			if len(roots[0].URIs) > 0 {
				if id, err := spiffeid.FromURI(roots[0].URIs[0]); err == nil {
					td = id.TrustDomain()
				}
			}
			next.roots[sec.GetName()] = x509bundle.FromX509Authorities(td, roots)
		default:
			return fmt.Errorf("secret %s: unsupported type %T", sec.GetName(), t)
		}
	}
	s.secretsV.Store(next)
	if old, cur := s.lastSerial.Load(), next.serial["default"]; cur != "" && (old == nil || *old != cur) {
		if old != nil {
			s.metrics.rotations.Inc()
		}
		s.lastSerial.Store(&cur)
	}
	return nil
}

func parseCerts(p []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, p = pem.Decode(p)
		if b == nil {
			return out, nil
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// CertSerial is the serial number of the workload certificate in use.
func (s *Sidecar) CertSerial() string { return s.secrets().serial["default"] }

// verifyPeer checks an X509-SVID chain against a root bundle, as Envoy's
// SPIFFE-aware validation in Istio does: chain to the bundle of the ID's
// trust domain, and within the validity period.
func verifyPeer(raw [][]byte, bundle *x509bundle.Bundle, sans, prefixes []string) (spiffeid.ID, error) {
	if bundle == nil {
		return spiffeid.ID{}, errors.New("no root certificates")
	}
	id, _, err := x509svid.ParseAndVerify(raw, bundle)
	if err != nil {
		return spiffeid.ID{}, err
	}
	if len(sans) > 0 {
		ok := false
		for _, s := range sans {
			if s == id.String() {
				ok = true
			}
		}
		if !ok {
			return spiffeid.ID{}, fmt.Errorf("peer %s is not one of %v", id, sans)
		}
	}
	if len(prefixes) > 0 {
		ok := false
		for _, p := range prefixes {
			if strings.HasPrefix(id.String(), p) {
				ok = true
			}
		}
		if !ok {
			return spiffeid.ID{}, fmt.Errorf("peer %s does not start with any of %v", id, prefixes)
		}
	}
	return id, nil
}

// serverTLS is the inbound TLS config of a chain; it reads the secrets at each handshake.
func (s *Sidecar) serverTLS(d *downstreamTLS) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: inboundALPN,
		// Envoy's default ECDH curves are X25519 and P-256 (tls.proto
		// TlsParameters.ecdh_curves); Go would otherwise offer the far
		// costlier hybrid X25519MLKEM768 first.
		CurvePreferences: envoyCurves,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.secrets().certs[d.certSecret]; c != nil {
				return c, nil
			}
			return nil, fmt.Errorf("no certificate %q yet", d.certSecret)
		},
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := verifyPeer(raw, s.secrets().roots[d.rootSecret], nil, d.sanPrefixes)
			return err
		},
	}
}

// clientTLS is the outbound TLS config of a cluster; like serverTLS it reads the secrets at each handshake.
func (s *Sidecar) clientTLS(u *upstreamTLS) *tls.Config {
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: envoyCurves,
		ServerName:       u.sni,
		// Resumption spares the signatures of a full handshake when load
		// forces new connections; Envoy's upstream TLS resumes sessions too,
		// but only within one TLS context: an SDS update builds a new one.
		ClientSessionCache: certSessions{s: s},
		NextProtos:         []string{"istio-peer-exchange", "istio", "http/1.1"},
		// The SPIFFE ID is checked below, not a DNS name.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyPeerCertificate against the SDS root
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := verifyPeer(raw, s.secrets().roots[u.rootSecret], u.sans, u.sanPrefixes)
			return err
		},
	}
	if s.cfg.Intercept {
		// istio.alpn, in every HCM istiod builds for outbound traffic, sets
		// the upstream ALPN of an HTTP/1.1 request to istio-http/1.1
		// (proxy/source/extensions/filters/http/alpn), which is what the
		// peer's virtualInbound HTTP chains match; tcp_proxy offers the
		// context's alpn_protocols instead (dialTCP).
		cfg.NextProtos = []string{"istio-http/1.1"}
	}
	if u.rootSecret == "" {
		// No validation context (DestinationRule SIMPLE without
		// caCertificates): Envoy does not verify the server's certificate.
		cfg.VerifyPeerCertificate = nil
	}
	if u.certSecret != "" {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := s.secrets().certs[u.certSecret]; c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		}
	}
	return cfg
}

// certSessions keeps TLS sessions by the workload certificate they were
// made with. A resumed session keeps the certificates of the handshake that
// made it, so without this a rotated sidecar would go on showing its old
// identity on new connections until the old certificate expired; Envoy
// starts a new session cache with the new TLS context of an SDS update.
// dialTLS fixes serial for each connection before its handshake, so that a
// session made with the old certificate is never filed under the new one
// (tickets also arrive after the handshake, when a rotation may have come).
type certSessions struct {
	s      *Sidecar
	serial string
}

func (c certSessions) key(k string) string {
	if c.serial == "" {
		return c.s.CertSerial() + "/" + k
	}
	return c.serial + "/" + k
}

func (c certSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return c.s.sessions.Get(c.key(key))
}

func (c certSessions) Put(key string, cs *tls.ClientSessionState) {
	c.s.sessions.Put(c.key(key), cs)
}

// peekListener sorts accepted connections by their first byte, as Envoy's
// TLS inspector does: a TLS handshake record (0x16) goes to the TLS chain,
// anything else to the plaintext chain. A connection no chain takes is
// closed, which is how STRICT refuses plaintext.
type peekListener struct {
	net.Listener
	tlsCfg  *tls.Config // nil: no TLS chain
	plain   bool        // a plaintext chain exists
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	closing atomic.Bool
}

func newPeekListener(l net.Listener, tlsCfg *tls.Config, plain bool) *peekListener {
	p := &peekListener{Listener: l, tlsCfg: tlsCfg, plain: plain, conns: make(chan net.Conn), done: make(chan struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

func (p *peekListener) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.Listener.Accept()
		if err != nil {
			if p.closing.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p.wg.Add(1)
		go p.classify(c)
	}
}

// peeked is a conn whose first bytes were read into a buffer.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (c *peeked) Read(b []byte) (int, error) { return c.r.Read(b) }

func (p *peekListener) classify(c net.Conn) {
	defer p.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peeked{Conn: c, r: br}
	switch {
	case first[0] == 0x16 && p.tlsCfg != nil:
		out = tls.Server(out, p.tlsCfg)
	case first[0] != 0x16 && p.plain:
	default:
		c.Close() // no filter chain matches
		return
	}
	select {
	case p.conns <- out:
	case <-p.done:
		c.Close()
	}
}

func (p *peekListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *peekListener) Close() error {
	var err error
	p.once.Do(func() {
		p.closing.Store(true)
		close(p.done)
		err = p.Listener.Close()
	})
	return err
}

// wait returns when every classifying goroutine has ended.
func (p *peekListener) wait() { p.wg.Wait() }

// clientCertConf is an HTTP connection manager's forward_client_cert_details
// and set_current_client_cert_details.
type clientCertConf struct {
	mode                           hcm.HttpConnectionManager_ForwardClientCertDetails
	subject, uri, dns, cert, chain bool
}

func compileClientCert(m *hcm.HttpConnectionManager) (clientCertConf, error) {
	d := m.GetSetCurrentClientCertDetails()
	return clientCertConf{mode: m.GetForwardClientCertDetails(), subject: d.GetSubject().GetValue(), uri: d.GetUri(), dns: d.GetDns(),
		cert: d.GetCert(), chain: d.GetChain()}, nil
}

const headerXFCC = "x-forwarded-client-cert"

// mutate does to a request's x-forwarded-client-cert what Envoy's
// ConnectionManagerUtility::mutateXfccRequestHeader does: without a client
// certificate the header is removed (except under ALWAYS_FORWARD_ONLY);
// with one, SANITIZE removes it, FORWARD_ONLY keeps it, APPEND_FORWARD
// appends this hop's element and SANITIZE_SET replaces the header with it.
// SANITIZE is the default, so an app's own header never passes outbound.
func (c clientCertConf) mutate(r *http.Request, self string) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		if c.mode != hcm.HttpConnectionManager_ALWAYS_FORWARD_ONLY {
			delete(r.Header, headerXFCCKey)
		}
		return
	}
	switch c.mode {
	case hcm.HttpConnectionManager_FORWARD_ONLY, hcm.HttpConnectionManager_ALWAYS_FORWARD_ONLY:
	case hcm.HttpConnectionManager_APPEND_FORWARD:
		r.Header.Add(headerXFCC, xfccElementOf(r, c, self))
	case hcm.HttpConnectionManager_SANITIZE_SET:
		r.Header.Set(headerXFCC, xfccElementOf(r, c, self))
	default: // SANITIZE
		delete(r.Header, headerXFCCKey)
	}

}

// element is this hop's XFCC element: By (own identity) and Hash (SHA-256
// of the peer certificate) always, then Cert, Chain (URL-encoded PEM),
// Subject, URI and DNS as set_current_client_cert_details asks, in the
// order of Envoy's mutateXfccRequestHeader (connection_manager_utility.cc);
// Istio's inbound sidecar asks for Subject, URI and DNS (listener_builder.go),
// its gateways for all five.
func (c clientCertConf) element(self string, chain []*x509.Certificate) string {
	peer := chain[0]
	sum := sha256.Sum256(peer.Raw)
	parts := []string{"By=" + self, "Hash=" + hex.EncodeToString(sum[:])}
	pemOf := func(cs []*x509.Certificate) string {
		var b []byte
		for _, x := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})...)
		}
		// Envoy URL-encodes the PEM (ssl_socket urlEncodedPemEncodedPeerCertificate).
		return `"` + url.QueryEscape(string(b)) + `"`
	}
	if c.cert {
		parts = append(parts, "Cert="+pemOf(chain[:1]))
	}
	if c.chain {
		parts = append(parts, "Chain="+pemOf(chain))
	}
	if c.subject {
		parts = append(parts, `Subject="`+peer.Subject.String()+`"`)
	}
	if c.uri && len(peer.URIs) > 0 {
		parts = append(parts, "URI="+peer.URIs[0].String())
	}
	if c.dns {
		for _, d := range peer.DNSNames {
			parts = append(parts, "DNS="+d)
		}
	}
	return strings.Join(parts, ";")
}

// dialTLS is a context-aware TLS dial for a transport. A handshake that
// fails is a failure to connect, as in Envoy, where an upstream TLS
// connection is connected only once its handshake is done (UF, retried
// under connect-failure): the error is marked as a dial error.
func dialTLS(d *net.Dialer, cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		cfg := cfg
		if cs, ok := cfg.ClientSessionCache.(certSessions); ok {
			// The serial is read before the certificate is, so a session
			// can only be filed under an older serial than its certificate's.
			cfg = cfg.Clone()
			cfg.ClientSessionCache = certSessions{s: cs.s, serial: cs.s.CertSerial()}
		}
		td := &tls.Dialer{NetDialer: d, Config: cfg}
		c, err := td.DialContext(ctx, network, addr)
		var op *net.OpError
		if err != nil && (!errors.As(err, &op) || op.Op != "dial") {
			err = &net.OpError{Op: "dial", Net: network, Err: err}
		}
		return c, err
	}
}

// principalOf returns the SPIFFE ID in a certificate, or "".
func principalOf(c *x509.Certificate) string {
	if c == nil || len(c.URIs) == 0 {
		return ""
	}
	return strings.TrimSpace(c.URIs[0].String())
}
