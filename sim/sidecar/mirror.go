package sidecar

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// Request mirroring: shadow copies of requests, answers thrown away.

// shadow is a mirror policy chosen for one request.
type shadow struct {
	u        *upstream
	noSuffix bool
}

// mirror sends a copy of the request as it goes upstream (rewrites and
// header edits applied) to a shadow cluster and forgets the answer, bounded
// by the route's timeout as Envoy's shadow requests are. Envoy appends
// "-shadow" to the host unless disable_shadow_host_suffix_append is set, as
// Istio sets it.
func (s *Sidecar) mirror(ur *upstreamRequest, sh shadow, timeout time.Duration) {
	h := sh.u.pick(nil, 1, "", false)
	if h == nil {
		return
	}
	host := ur.host
	if !sh.noSuffix {
		name, port, err := net.SplitHostPort(ur.host)
		host = ur.host + "-shadow"
		if err == nil {
			host = net.JoinHostPort(name+"-shadow", port)
		}
	}
	hdr := ur.header.Clone()
	s.mirrors.Add(1)
	go func() {
		defer s.mirrors.Done()
		ctx, cancel := s.ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		defer cancel()
		t, scheme := sh.u.transportFor(h, sh.u.conf.Load().useH2(ur.downstreamH2))
		req, err := http.NewRequestWithContext(ctx, ur.method, scheme+"://"+h.addr+ur.uri, bytes.NewReader(ur.body))
		if err != nil {
			return
		}
		req.Header, req.Host = hdr, host
		resp, err := t.RoundTrip(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}
