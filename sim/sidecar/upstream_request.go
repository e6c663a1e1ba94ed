package sidecar

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
)

// try is what one attempt upstream holds, in one allocation: its URL and
// body reader, its wait for a connection and the end of its stream.
type try struct {
	url    url.URL
	body   bytes.Reader
	waiter connWaiter
	end    streamEnd
}

// newRequest is the try's request to addr: what http.NewRequestWithContext
// makes of scheme://addr followed by the request-URI, with the prepared
// header and body. A request-URI that url.Parse would leave as it is goes
// out as the URL's opaque part, unparsed.
func (ur *upstreamRequest) newRequest(ctx context.Context, scheme, addr string, t *try) (*http.Request, error) {
	u := &t.url
	if ur.method != http.MethodConnect && plainRequestURI(ur.uri) {
		*u = url.URL{Scheme: scheme, Host: addr, Opaque: ur.uri}
	} else {
		p, err := url.Parse(scheme + "://" + addr + ur.uri)
		if err != nil {
			return nil, err
		}
		u = p
	}
	req := http.Request{Method: ur.method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: ur.header, Host: ur.host, Body: http.NoBody}
	switch {
	case len(ur.body) > 0:
		// As NewRequestWithContext does for a *bytes.Reader: the length
		// is known, and GetBody lets the transport send the body again
		// on a connection that closed before it took the request. The
		// body stays a NopCloser around a *bytes.Reader, which the
		// transport knows to be in memory: it writes the headers and
		// such a body together (transfer.go isKnownInMemoryReader),
		// where it would flush the headers first for another reader.
		t.body.Reset(ur.body)
		req.Body, req.ContentLength, req.GetBody = io.NopCloser(&t.body), int64(len(ur.body)), ur.getBody
	case ur.stream != nil:
		req.Body = io.NopCloser(ur.stream) // of unknown length: sent chunked
	}
	return req.WithContext(ctx), nil
}

// plainRequestURI reports whether uri, a path and maybe a query, is
// written as it is after url.Parse: URL.RequestURI returns it unchanged.
// That holds for a path that does not start with "//" and has only bytes
// url's encodePath mode leaves unescaped (encoding_table.go), followed by
// a query of printable bytes without a fragment's '#'.
func plainRequestURI(uri string) bool {
	if len(uri) == 0 || uri[0] != '/' || len(uri) > 1 && uri[1] == '/' {
		return false
	}
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c == '?' {
			for _, c := range []byte(uri[i+1:]) {
				if c <= ' ' || c >= 0x7f || c == '#' {
					return false
				}
			}
			return true
		}
		if !pathByte(c) {
			return false
		}
	}
	return true
}

// pathByte: url.shouldEscape(c, encodePath) is false.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}
