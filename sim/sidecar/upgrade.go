package sidecar

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// HTTP/1.1 upgrades (WebSocket), as Envoy's HTTP connection manager and
// router carry them: the HCM's upgrade_configs say which upgrade types it
// allows, a route's upgrade_configs may disable or enable one, an allowed
// upgrade goes upstream with its Upgrade and Connection headers, and after
// a 101 the bytes flow both ways until either side closes.

// compileHCMUpgrades reads the HCM's upgrade_configs: each upgrade type,
// enabled unless enabled is false (http_connection_manager.proto
// UpgradeConfig). An upgrade filter chain of its own is refused.
func compileHCMUpgrades(m *hcm.HttpConnectionManager) (map[string]bool, error) {
	var out map[string]bool
	for _, u := range m.GetUpgradeConfigs() {
		if len(u.GetFilters()) > 0 {
			return nil, fmt.Errorf("upgrade_configs %s: an upgrade filter chain is not supported", u.GetUpgradeType())
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[strings.ToLower(u.GetUpgradeType())] = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}
	return out, nil
}

// compileRouteUpgrades reads a route's upgrade_configs: per type, enabled
// (default true) or disabled; connect_config (CONNECT termination) is refused.
func compileRouteUpgrades(a *route.RouteAction) (map[string]bool, error) {
	var out map[string]bool
	for _, u := range a.GetUpgradeConfigs() {
		if u.GetConnectConfig() != nil {
			return nil, fmt.Errorf("upgrade_configs %s: connect_config is not supported", u.GetUpgradeType())
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[strings.ToLower(u.GetUpgradeType())] = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}
	return out, nil
}

// upgradeOf is the upgrade an HTTP/1.1 request asks for: its Upgrade
// header when Connection lists "upgrade" (Http::Utility::isUpgrade), else "".
func upgradeOf(r *http.Request) string {
	if r.ProtoMajor != 1 || r.Header.Get("Upgrade") == "" {
		return ""
	}
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return strings.ToLower(strings.TrimSpace(r.Header.Get("Upgrade")))
			}
		}
	}
	return ""
}

// upgradeAllowed is ConnectionManagerConfig::createUpgradeFilterChain
// (source/extensions/filters/network/http_connection_manager/config.cc):
// a route that disables the type refuses it; a route that enables it
// allows it; otherwise the HCM's upgrade_configs decide, and a type it
// does not name is refused.
func upgradeAllowed(hcmUpgrades, routeUpgrades map[string]bool, typ string) bool {
	if on, ok := routeUpgrades[typ]; ok {
		return on
	}
	return hcmUpgrades[typ]
}

// refuseUpgrade is Envoy's answer to an upgrade the HCM and route do not
// allow (conn_manager_impl.cc decodeHeaders, upgrade_rejected): a local
// reply 403 with an empty body, details upgrade_failed, and the
// connection closed after it ("refuse to process any further requests on
// this connection", against request smuggling in the upgrade's payload).
func (s *Sidecar) refuseUpgrade(w http.ResponseWriter, x *exchange) {
	x.code = http.StatusForbidden
	w.Header().Set("server", "envoy")
	w.Header().Set("Connection", "close")
	w.Header().Set("content-length", "0")
	w.WriteHeader(http.StatusForbidden)
}

// errUpgradeDownstream: the downstream connection could not be taken over.
var errUpgradeDownstream = errors.New("upgrade: downstream connection cannot be hijacked")

// serveUpgraded completes an upgrade the upstream accepted (101): the
// answer's headers go downstream as they came, with the route's response
// header edits, then the connection carries bytes both ways (Envoy's
// router streams an upgraded request's data without end of stream until
// a side closes). The body of a 101 from Go's transport is the upstream
// connection (net/http: "the response Body is an io.ReadWriteCloser").
func (s *Sidecar) serveUpgraded(w http.ResponseWriter, resp *http.Response, x *exchange, cr *compiledRoute) error {
	up, ok := upgradedBody(resp.Body)
	if !ok {
		resp.Body.Close()
		return errors.New("upgrade: the upstream answer is not a connection")
	}
	defer resp.Body.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return errUpgradeDownstream
	}
	defer conn.Close()
	for _, h := range cr.headers.respRemove {
		resp.Header.Del(h)
	}
	for _, kv := range cr.headers.respSet {
		resp.Header.Set(kv[0], kv[1])
	}
	for _, kv := range cr.headers.respAdd {
		resp.Header.Add(kv[0], kv[1])
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(brw, "HTTP/1.1 %s\r\n", resp.Status); err != nil {
		return err
	}
	if err := resp.Header.Write(brw); err != nil {
		return err
	}
	if _, err := io.WriteString(brw, "\r\n"); err != nil {
		return err
	}
	if err := brw.Flush(); err != nil {
		return err
	}
	x.code = resp.StatusCode
	splice(&bufferedConn{Conn: conn, r: brw.Reader}, &rwcConn{rwc: up, local: conn.LocalAddr(), remote: conn.RemoteAddr()}, 0)
	return nil
}

// upgradedBody finds the upstream connection under the body's wrappers
// (the attempt's and the connection slot's streamEnd).
func upgradedBody(b io.ReadCloser) (io.ReadWriteCloser, bool) {
	for {
		se, ok := b.(*streamEnd)
		if !ok {
			break
		}
		b = se.ReadCloser
	}
	rwc, ok := b.(io.ReadWriteCloser)
	return rwc, ok
}

// bufferedConn reads what the HTTP server had already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("no half-close")
}

// rwcConn lets splice copy to an upgraded upstream body; it has no
// half-close, so the end of one direction ends both, as an upgraded
// HTTP/1.1 stream whose upstream has no half-close does.
type rwcConn struct {
	rwc           io.ReadWriteCloser
	local, remote net.Addr
}

func (c *rwcConn) Read(b []byte) (int, error)         { return c.rwc.Read(b) }
func (c *rwcConn) Write(b []byte) (int, error)        { return c.rwc.Write(b) }
func (c *rwcConn) Close() error                       { return c.rwc.Close() }
func (c *rwcConn) LocalAddr() net.Addr                { return c.local }
func (c *rwcConn) RemoteAddr() net.Addr               { return c.remote }
func (c *rwcConn) SetDeadline(time.Time) error        { return nil }
func (c *rwcConn) SetReadDeadline(time.Time) error    { return nil }
func (c *rwcConn) SetWriteDeadline(t time.Time) error { return nil }
