package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/meshbench/meshbench/sim/runtime"
)

// The hooks package chaos builds its faults on, with real container
// mechanisms: SIGKILL, the cgroup freezer, packet drops in the pod's
// network namespace.
var (
	_ runtime.FaultInjector  = (*Mesh)(nil)
	_ runtime.PacketDropper  = (*Mesh)(nil)
	_ runtime.FaultProxyHost = (*Mesh)(nil)
	_ runtime.Mechanisms     = (*Mesh)(nil)
)

// CrashPod implements runtime.FaultInjector: docker kill (SIGKILL) of the
// pod's containers; its endpoint stays in EDS until SetPodReady(false).
func (m *Mesh) CrashPod(ctx context.Context, name string) error {
	_, err := m.kill(ctx, name)
	return err
}

// SetPodReady implements runtime.FaultInjector.
func (m *Mesh) SetPodReady(ctx context.Context, name string, ready bool) error {
	return m.cp.SetPodReady(ctx, name, ready)
}

func (m *Mesh) runningPod(name string) (*pod, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pd := m.pods[name]
	if pd == nil || !pd.running {
		return nil, fmt.Errorf("no running pod %q", name)
	}
	return pd, nil
}

// PausePod implements runtime.FaultInjector: docker pause of the app's
// container, which the cgroup freezer stops whole. Its sidecar goes on
// (its xDS stream, its metrics); the kernel still accepts connections on
// the app's listening socket, and nothing answers them.
func (m *Mesh) PausePod(ctx context.Context, name string) error {
	pd, err := m.runningPod(name)
	if err != nil {
		return err
	}
	_, err = m.cli.ContainerPause(ctx, pd.app, client.ContainerPauseOptions{})
	return err
}

// ResumePod implements runtime.FaultInjector.
func (m *Mesh) ResumePod(ctx context.Context, name string) error {
	m.mu.Lock()
	pd := m.pods[name]
	m.mu.Unlock()
	if pd == nil {
		return fmt.Errorf("no pod %q", name)
	}
	_, err := m.cli.ContainerUnpause(ctx, pd.app, client.ContainerUnpauseOptions{})
	return err
}

// SetAppBehaviour implements runtime.FaultInjector: the change goes to the
// app's behaviour endpoint on the pod's loopback, through docker exec.
func (m *Mesh) SetAppBehaviour(ctx context.Context, name string, b runtime.AppBehaviour) error {
	pd, err := m.runningPod(name)
	if err != nil {
		return err
	}
	body, err := json.Marshal(m.cp.Behaviour(pd.info, b))
	if err != nil {
		return err
	}
	_, err = m.exec(ctx, pd.appC, []string{"/meshbench", "appctl", "-admin", net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)), "-json", string(body)})
	return err
}

// exec runs cmd in a container and returns its output; a non-zero exit is an error.
func (m *Mesh) exec(ctx context.Context, c testcontainers.Container, cmd []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	code, r, err := c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", err
	}
	out, _ := io.ReadAll(r)
	if code != 0 {
		return string(out), fmt.Errorf("%s: exit %d: %s", strings.Join(cmd[:2], " "), code, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// StopControlPlane implements runtime.FaultInjector: the xDS server stops at once.
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

// FaultProxyHost implements runtime.FaultProxyHost: the containers reach
// this process on the bridge's address.
func (m *Mesh) FaultProxyHost() string { return m.net.host.String() }

// DropInbound implements runtime.PacketDropper: an nftables chain in the
// pod's network namespace drops the TCP packets that reach its port from
// the pods in from (from anywhere when from is empty), put there and held
// by a privileged process run in the pod (netfault_hold.go).
func (m *Mesh) DropInbound(ctx context.Context, name string, from []string) (func(context.Context) error, error) {
	pd, err := m.runningPod(name)
	if err != nil {
		return nil, err
	}
	var srcs []string
	for _, f := range from {
		if f == m.gw.Name {
			srcs = append(srcs, m.gw.IP.String())
			continue
		}
		p, ok := m.reg.Pod(f)
		if !ok {
			return nil, fmt.Errorf("no pod %q", f)
		}
		srcs = append(srcs, p.IP.String())
	}
	m.mu.Lock()
	m.faults++
	id := strconv.Itoa(m.faults)
	m.mu.Unlock()
	args := []string{"hold", "-id", id, "-ports", strconv.Itoa(pd.info.Port)}
	if len(srcs) > 0 {
		args = append(args, "-from", strings.Join(srcs, ","))
	}
	h, err := m.holdNetfault(ctx, pd, args)
	if err != nil {
		return nil, err
	}
	return h.release, nil
}

// netfault runs `meshbench netfault ARGS` in a helper container in pod's
// network namespace and returns its output.
func (m *Mesh) netfault(ctx context.Context, pd *pod, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m.mu.Lock()
	m.faults++
	n := m.faults
	m.mu.Unlock()
	name := m.name("netfault", strconv.Itoa(n))
	if pd != nil {
		name = m.name(pd.info.Name, "netfault", strconv.Itoa(n))
	}
	target := m.gateway
	if pd != nil {
		target = pd.sandbox
	}
	c, err := m.createOnly(ctx, testcontainers.ContainerRequest{
		Name: name, Image: m.images.Sidecar, Labels: m.labelsFor("netfault", ""),
		Entrypoint: []string{"/meshbench", "netfault"}, Cmd: args,
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode("container:" + target)
			hc.CapAdd = []string{"NET_ADMIN"}
		},
	})
	var id string
	if c != nil {
		id = c.GetContainerID()
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_, _ = m.cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true})
		}()
	}
	if err != nil {
		return "", err
	}
	wait := m.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := m.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("netfault helper: %w", err)
	}
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		return "", fmt.Errorf("netfault helper: %w", err)
	}
	var out bytes.Buffer
	if logs, err := c.Logs(ctx); err == nil {
		_, _ = io.Copy(&out, logs)
		logs.Close()
	}
	if code != 0 {
		return out.String(), fmt.Errorf("netfault %s: exit %d: %s", args[0], code, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// createOnly creates a container without starting it.
func (m *Mesh) createOnly(ctx context.Context, req testcontainers.ContainerRequest) (testcontainers.Container, error) {
	return testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: false, Logger: quiet{}})
}

// probeQdiscs asks the kernel, from the gateway's namespace, which
// traffic-control qdiscs network faults could use.
func (m *Mesh) probeQdiscs(ctx context.Context) map[string]string {
	out := map[string]string{"netem": "not probed", "tbf": "not probed"}
	s, err := m.netfault(ctx, nil, "probe", "-link", "eth0")
	if err != nil {
		m.log.Warn("probing qdiscs", "err", err)
		return out
	}
	if err := json.Unmarshal([]byte(lastLine(s)), &out); err != nil {
		m.log.Warn("probing qdiscs", "err", err, "output", s)
	}
	return out
}

// Mechanism implements runtime.Mechanisms: how this runtime puts a fault
// kind in place, for the result's fault record.
func (m *Mesh) Mechanism(kind string) string {
	switch kind {
	case "kill", "restart":
		return "docker kill (SIGKILL) of the pod's containers; started again with the same name, address and identity"
	case "pause":
		return "docker pause of the app's container (cgroup freezer)"
	case "blackhole", "partition":
		return "nftables drop rules in the pod's network namespace, held by a privileged docker exec in the pod"
	case "latency", "bandwidth", "reset", "slowClose":
		why := "tc cannot do per-connection resets and slow closes"
		switch kind {
		case "latency":
			why = "tc netem unusable here: " + m.qdisc["netem"]
		case "bandwidth":
			why = "tc qdiscs apply to every peer of the pod, and per-peer faults need per-connection state; tbf: " + orOK(m.qdisc["tbf"])
		}
		return "Toxiproxy in this process in front of the pod's inbound side, EDS redirected to it (" + why + ")"
	case "appErrors", "appLatency":
		return "the app's behaviour endpoint on the pod's loopback, through docker exec"
	case "xdsOutage":
		return "the xDS server in this process stopped"
	}
	return ""
}

func orOK(s string) string {
	if s == "" {
		return "available"
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
