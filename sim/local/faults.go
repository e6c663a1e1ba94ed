package local

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/runtime"
)

// The hooks of runtime.FaultInjector: what package chaos needs of the local
// runtime to inject faults into a running mesh.
var _ runtime.FaultInjector = (*Mesh)(nil)

// runningPod returns a running pod by name.
func (m *Mesh) runningPod(name string) (*pod, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pd := m.pods[name]
	if pd == nil || !pd.running {
		return nil, fmt.Errorf("no running pod %q", name)
	}
	return pd, nil
}

// CrashPod implements runtime.FaultInjector: the app and the sidecar close
// their listeners and connections at once, as KillPod, but the endpoint
// stays in EDS until SetPodReady(false).
func (m *Mesh) CrashPod(ctx context.Context, name string) error {
	m.mu.Lock()
	pd := m.pods[name]
	if pd == nil || !pd.running {
		m.mu.Unlock()
		return fmt.Errorf("no running pod %q", name)
	}
	pd.running = false
	m.mu.Unlock()
	pd.stop()
	m.xds.ClearSnapshot(pd.info.NodeID())
	m.xds.ClearSnapshot(controlplane.ProxylessNodeID(pd.info))
	return nil
}

// SetPodReady implements runtime.FaultInjector.
func (m *Mesh) SetPodReady(ctx context.Context, name string, ready bool) error {
	return m.cp.SetPodReady(ctx, name, ready)
}

// PausePod implements runtime.FaultInjector: the app's connections stop
// reading and writing (bytes wait in the kernel's buffers) and new ones are
// accepted but get nothing, until ResumePod. The sidecar goes on: it keeps
// its xDS stream and metrics, as when only the app's container is paused.
func (m *Mesh) PausePod(ctx context.Context, name string) error {
	pd, err := m.runningPod(name)
	if err != nil {
		return err
	}
	pd.gate.pause()
	return nil
}

// ResumePod implements runtime.FaultInjector.
func (m *Mesh) ResumePod(ctx context.Context, name string) error {
	m.mu.Lock()
	pd := m.pods[name]
	m.mu.Unlock()
	if pd == nil {
		return fmt.Errorf("no pod %q", name)
	}
	pd.gate.resume()
	return nil
}

// SetAppBehaviour implements runtime.FaultInjector.
func (m *Mesh) SetAppBehaviour(ctx context.Context, name string, b runtime.AppBehaviour) error {
	pd, err := m.runningPod(name)
	if err != nil {
		return err
	}
	return pd.app.Apply(m.cp.Behaviour(pd.info, b))
}

// StopControlPlane implements runtime.FaultInjector.
func (m *Mesh) StopControlPlane(ctx context.Context) error {
	m.xds.Stop()
	return nil
}

// StartControlPlane implements runtime.FaultInjector: the snapshots survive
// in the server's cache, so reconnecting proxies get the config in force.
func (m *Mesh) StartControlPlane(ctx context.Context) error { return m.cp.RestartXDS(ctx) }

// InboundAddr implements runtime.FaultInjector.
func (m *Mesh) InboundAddr(name string) (string, error) { return m.cp.InboundAddr(name) }

// RedirectInbound implements runtime.FaultInjector.
func (m *Mesh) RedirectInbound(ctx context.Context, name string, from []string, addr string) error {
	return m.cp.Redirect(ctx, name, from, addr)
}

// pauseGate freezes the connections of a pod's app while paused. The zero
// value is open; an open gate costs a connection one atomic load per read
// or write.
type pauseGate struct {
	mu     sync.Mutex                    // serialises pause and resume
	paused atomic.Pointer[chan struct{}] // set while paused; closed by resume
}

func (g *pauseGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused.Load() == nil {
		ch := make(chan struct{})
		g.paused.Store(&ch)
	}
}

func (g *pauseGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.paused.Load(); ch != nil {
		close(*ch)
		g.paused.Store(nil)
	}
}

// wait blocks while the gate is paused, or until closed.
func (g *pauseGate) wait(closed <-chan struct{}) error {
	ch := g.paused.Load()
	if ch == nil {
		return nil
	}
	select {
	case <-*ch:
		return nil
	case <-closed:
		return net.ErrClosed
	}
}

// listener wraps the app's listener so that its connections obey the gate.
func (g *pauseGate) listener(l net.Listener) net.Listener { return &gatedListener{Listener: l, g: g} }

type gatedListener struct {
	net.Listener
	g *pauseGate
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: l.g, closed: make(chan struct{})}, nil
}

// gatedConn holds what it reads until the gate opens, and writes only then:
// a paused app has the bytes in its socket but does nothing with them.
type gatedConn struct {
	net.Conn
	g      *pauseGate
	once   sync.Once
	closed chan struct{}
}

func (c *gatedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if werr := c.g.wait(c.closed); werr != nil {
		return 0, werr
	}
	return n, err
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if err := c.g.wait(c.closed); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
