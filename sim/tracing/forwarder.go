package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Forwarder sends spans to a user's collector: a Zipkin v2 endpoint
// (http://host:9411/api/v2/spans: Jaeger and Tempo take it too) or an
// OTLP/HTTP one (a URL whose path ends in /v1/traces), as JSON.
type Forwarder struct {
	url    string
	otlp   bool
	client *http.Client
}

// NewForwarder checks the endpoint; client nil takes http.DefaultClient.
func NewForwarder(endpoint string, client *http.Client) (*Forwarder, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("traces endpoint %q: %v", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("traces endpoint %q: want http(s)://host:port/api/v2/spans or .../v1/traces", endpoint)
	}
	otlp := strings.HasSuffix(u.Path, OTLPPath)
	if !otlp && !strings.HasSuffix(u.Path, ZipkinPath) {
		return nil, fmt.Errorf("traces endpoint %q: the path must end in %s (Zipkin v2) or %s (OTLP/HTTP)", endpoint, ZipkinPath, OTLPPath)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Forwarder{url: endpoint, otlp: otlp, client: client}, nil
}

// Send POSTs spans in one request.
func (f *Forwarder) Send(ctx context.Context, spans []Span) error {
	var buf bytes.Buffer
	var err error
	if f.otlp {
		err = WriteOTLP(&buf, spans)
	} else {
		err = WriteZipkin(&buf, spans)
	}
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", f.url, resp.Status, strings.TrimSpace(string(b)))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// String is the endpoint.
func (f *Forwarder) String() string { return f.url }
