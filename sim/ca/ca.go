// Package ca is the mesh's certificate authority: a root per trust domain and,
// per workload, X.509 SVIDs whose URI SAN is the workload's SPIFFE ID
// spiffe://<trust domain>/ns/<namespace>/sa/<service account>, as istiod's CA
// issues them.
//
// Unlike Istio, where the sidecar's agent makes the key and sends a CSR, this
// CA makes the key pair too, and the control plane hands it to the sidecar
// over SDS. Keys stay in memory; nothing is written to disk.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultTTL is the lifetime Istio gives workload certificates (24h,
// SECRET_TTL in the proxy agent).
const DefaultTTL = 24 * time.Hour

// ErrStopped is returned while the CA refuses to issue (a chaos fault).
var ErrStopped = errors.New("ca: not issuing")

// CA issues workload certificates under one self-signed root.
type CA struct {
	td      spiffeid.TrustDomain
	root    *x509.Certificate
	rootKey crypto.Signer
	rootPEM []byte

	mu      sync.Mutex
	ttl     time.Duration
	stopped bool
	serial  int64
}

// New makes a CA with a fresh root for a trust domain.
func New(trustDomain string, ttl time.Duration) (*CA, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("ca: trust domain %q: %w", trustDomain, err)
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{trustDomain}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{td.ID().URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{td: td, root: root, rootKey: key, ttl: ttl, serial: 1,
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// TrustDomain is the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// RootPEM is the root certificate, PEM encoded: the ROOTCA secret.
func (c *CA) RootPEM() []byte { return c.rootPEM }

// Root is the root certificate.
func (c *CA) Root() *x509.Certificate { return c.root }

// TTL is the lifetime of the certificates the CA issues now.
func (c *CA) TTL() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ttl
}

// SetIssuing stops or resumes issuing.
func (c *CA) SetIssuing(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = !on
}

// WorkloadID is the SPIFFE ID Istio gives a workload.
func (c *CA) WorkloadID(namespace, serviceAccount string) (spiffeid.ID, error) {
	return spiffeid.FromSegments(c.td, "ns", namespace, "sa", serviceAccount)
}

// Cert is an issued workload certificate with its key, PEM encoded.
type Cert struct {
	ID       spiffeid.ID
	CertPEM  []byte
	KeyPEM   []byte
	Serial   *big.Int
	NotAfter time.Time
}

// Issue signs a certificate for id valid from now for the CA's TTL.
func (c *CA) Issue(id spiffeid.ID) (*Cert, error) {
	return c.issue(id, time.Now(), c.TTL())
}

// IssueExpired signs a certificate for id that expired an hour ago, for
// scenarios that check it is refused.
func (c *CA) IssueExpired(id spiffeid.ID) (*Cert, error) {
	return c.issue(id, time.Now().Add(-2*time.Hour), time.Hour)
}

func (c *CA) issue(id spiffeid.ID, from time.Time, ttl time.Duration) (*Cert, error) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, ErrStopped
	}
	c.serial++
	serial := big.NewInt(c.serial)
	c.mu.Unlock()
	if !id.MemberOf(c.td) {
		return nil, fmt.Errorf("ca: %s is not in trust domain %s", id, c.td)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    from.Add(-time.Second),
		NotAfter:     from.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, &key.PublicKey, c.rootKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := &Cert{
		ID: id, Serial: serial, NotAfter: tmpl.NotAfter,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	// Check what we made is a valid X509-SVID, as the SPIFFE spec defines it.
	if _, err := x509svid.Parse(out.CertPEM, out.KeyPEM); err != nil {
		return nil, fmt.Errorf("ca: issued an invalid SVID: %w", err)
	}
	return out, nil
}
