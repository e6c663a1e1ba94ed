package sidecar

import (
	"bytes"
	"time"
)

// The listener filters that look at a connection's first bytes without
// consuming them (they stay in the chainConn's buffer for the chain).

// maxInspect bounds what the inspectors peek: one TLS record of 16 KiB
// with its header, which also holds any HTTP request line we look for.
const maxInspect = 16<<10 + 5

// inspect runs the listener's tls_inspector and http_inspector under
// listener_filters_timeout. It reports false when the connection must be
// closed: it ended, or the timeout passed without
// continue_on_listener_filters_timeout.
func inspect(c *chainConn, lc *listenerConf) bool {
	info := c.info
	port := int(info.dst.Port())
	tlsOn := lc.tlsInspector && (lc.tlsDisabled == nil || !lc.tlsDisabled(port))
	httpOn := lc.httpInspector && (lc.httpDisabled == nil || !lc.httpDisabled(port))
	if lc.filtersTimeout > 0 && (tlsOn || httpOn) {
		_ = c.Conn.SetReadDeadline(time.Now().Add(lc.filtersTimeout))
		defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	}
	ok := true
	var err error
	if tlsOn {
		err = inspectTLS(c, info)
	}
	// http_inspector.cc: a connection the TLS inspector claimed is left alone.
	if err == nil && httpOn && info.transport == "" {
		err = inspectHTTP(c, info)
	}
	if err != nil {
		ok = isTimeout(err) && lc.continueOnTimeout
	}
	// active_tcp_socket.cc: with no transport protocol detected, a
	// connection is "raw_buffer" for the filter chain match.
	if info.transport == "" {
		info.transport = "raw_buffer"
	}
	return ok
}

// peekMore returns what is buffered, reading at least one more byte than
// have (one read's worth: Peek fills the buffer with what arrives).
func peekMore(c *chainConn, have int) ([]byte, error) {
	if _, err := c.r.Peek(have + 1); err != nil {
		return nil, err
	}
	return c.r.Peek(c.r.Buffered())
}

// inspectTLS is tls_inspector (source/extensions/filters/listener/
// tls_inspector/tls_inspector.cc): a TLS ClientHello makes the transport
// "tls" and yields its SNI and ALPN; anything else leaves it unset.
func inspectTLS(c *chainConn, info *connInfo) error {
	b, err := peekMore(c, 0)
	if err != nil {
		return err
	}
	if b[0] != 0x16 {
		return nil
	}
	for len(b) < 5 {
		if b, err = peekMore(c, len(b)); err != nil {
			return err
		}
	}
	n := min(5+(int(b[3])<<8|int(b[4])), maxInspect)
	for len(b) < n {
		if b, err = peekMore(c, len(b)); err != nil {
			return err
		}
	}
	sni, alpn, ok := parseClientHello(b[5:n])
	if !ok {
		return nil // not a ClientHello: tls_inspector leaves the connection undetected
	}
	info.transport, info.sni, info.alpn = "tls", sni, alpn
	return nil
}

// parseClientHello reads SNI and ALPN from a handshake record's body.
func parseClientHello(b []byte) (sni string, alpn []string, ok bool) {
	r := reader(b)
	typ, ok1 := r.u8()
	if !ok1 || typ != 1 {
		return "", nil, false
	}
	if _, ok := r.n(3); !ok { // handshake length
		return "", nil, false
	}
	if _, ok := r.n(2 + 32); !ok { // version, random
		return "", nil, false
	}
	for _, lenBytes := range []int{1, 2, 1} { // session id, cipher suites, compression
		if _, ok := r.vec(lenBytes); !ok {
			return "", nil, false
		}
	}
	exts, ok1 := r.vec(2)
	if !ok1 {
		return "", nil, true // no extensions
	}
	for len(exts) >= 4 {
		typ := int(exts[0])<<8 | int(exts[1])
		body, rest, ok := (reader(exts[2:])).vecRest(2)
		if !ok {
			break
		}
		exts = rest
		switch typ {
		case 0: // server_name
			list, _, ok := reader(body).vecRest(2)
			for ok && len(list) >= 3 {
				name, rest, ok2 := reader(list[1:]).vecRest(2)
				if !ok2 {
					break
				}
				if list[0] == 0 {
					sni = string(name)
				}
				list = rest
			}
		case 16: // application_layer_protocol_negotiation
			list, _, ok := reader(body).vecRest(2)
			for ok && len(list) > 0 {
				p, rest, ok2 := reader(list).vecRest(1)
				if !ok2 {
					break
				}
				alpn = append(alpn, string(p))
				list = rest
			}
		}
	}
	return sni, alpn, true
}

type reader []byte

func (r *reader) u8() (byte, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v, true
}

func (r *reader) n(k int) ([]byte, bool) {
	if len(*r) < k {
		return nil, false
	}
	v := (*r)[:k]
	*r = (*r)[k:]
	return v, true
}

// vec reads a vector with a big-endian length of lenBytes bytes.
func (r *reader) vec(lenBytes int) ([]byte, bool) {
	l, ok := r.n(lenBytes)
	if !ok {
		return nil, false
	}
	n := 0
	for _, x := range l {
		n = n<<8 | int(x)
	}
	return r.n(n)
}

func (r reader) vecRest(lenBytes int) (v, rest []byte, ok bool) {
	v, ok = r.vec(lenBytes)
	return v, r, ok
}

// h2Preface is the HTTP/2 connection preface (RFC 9113 section 3.4).
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// inspectHTTP is http_inspector (source/extensions/filters/listener/
// http_inspector/http_inspector.cc): the HTTP/2 preface is "h2c", an
// HTTP/1.x request line "http/1.1" or "http/1.0"; anything else, or a
// request line longer than the filter reads, is no HTTP.
func inspectHTTP(c *chainConn, info *connInfo) error {
	var b []byte
	for {
		var err error
		if b, err = peekMore(c, len(b)); err != nil {
			return err
		}
		proto, more := classifyHTTP(b)
		if !more || len(b) >= maxInspect {
			if proto != "" {
				info.alpn = []string{proto}
			}
			return nil
		}
	}
}

// classifyHTTP says what the first bytes are, or that it needs more.
func classifyHTTP(b []byte) (proto string, more bool) {
	if len(b) < len(h2Preface) && bytes.HasPrefix(h2Preface, b) {
		return "", true
	}
	if bytes.HasPrefix(b, h2Preface) {
		return "h2c", false
	}
	line, complete := b, false
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line, complete = bytes.TrimSuffix(b[:i], []byte("\r")), true
	}
	// method SP request-target SP HTTP-version
	sp := bytes.IndexByte(line, ' ')
	method := line
	if sp >= 0 {
		method = line[:sp]
	}
	if len(method) > 24 || (sp == 0) {
		return "", false
	}
	for _, ch := range method {
		if (ch < 'A' || ch > 'Z') && ch != '-' && ch != '_' {
			return "", false
		}
	}
	if !complete {
		return "", true
	}
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", false
	}
	switch string(parts[2]) {
	case "HTTP/1.1":
		return "http/1.1", false
	case "HTTP/1.0":
		return "http/1.0", false
	}
	return "", false
}
