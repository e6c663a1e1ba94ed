package docker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"

	"github.com/meshbench/meshbench/internal/requiretest"
	"github.com/meshbench/meshbench/internal/staticbin"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/scenarios/run"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// These tests need a Docker engine (make docker-engine starts one here) and
// build a static meshbench binary for the images; without an engine they skip.
var (
	noEngine error  // why the tests skip
	binary   string // the static meshbench the images hold
)

func TestMain(m *testing.M) {
	code := func() int {
		if noEngine = docker.Available(context.Background()); noEngine != nil {
			return m.Run()
		}
		bin, cleanup, err := staticbin.Build()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cleanup()
		binary = bin
		return m.Run()
	}()
	os.Exit(code)
}

func needEngine(t *testing.T) {
	t.Helper()
	if noEngine != nil {
		requiretest.Missing(t, requiretest.Docker, fmt.Sprintf("no Docker engine: %v", noEngine))
	}
}

func engine(t *testing.T) *testcontainers.DockerClient {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

func startMesh(t *testing.T, topo registry.Topology) *docker.Mesh {
	t.Helper()
	needEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := docker.Runtime{Binary: binary}.Start(ctx, runtime.Spec{Topology: topo, Config: meshconfig.Config{}, Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	return m.(*docker.Mesh)
}

// order sends one request through the ingress gateway to order.
func order(t *testing.T, m runtime.Mesh) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.Entry().URL+"/orders", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Host = "order.default.svc.cluster.local"
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func state(t *testing.T, cli *testcontainers.DockerClient, id string) (running, paused bool) {
	t.Helper()
	ins, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	require.NoError(t, err)
	return ins.Container.State.Running, ins.Container.State.Paused
}

func pod(t *testing.T, m runtime.Mesh, name string) runtime.Pod {
	t.Helper()
	for _, p := range m.Pods() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no pod %s", name)
	return runtime.Pod{}
}

func TestMeshServesThroughContainersAndAppsOnlyThroughTheirSidecars(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	assert.True(t, strings.HasPrefix(m.Entry().URL, "http://127.0.0.1:"), "the gateway is published on loopback only: %s", m.Entry().URL)
	for i := 0; i < 20; i++ {
		code, err := order(t, m)
		require.NoError(t, err)
		require.Equal(t, 200, code)
	}
	// The app listens on the pod's loopback, and so do the 15001 capture
	// listener and the app's behaviour endpoint: from outside the pod none
	// answers; the sidecar's inbound port and :15090 do.
	p := pod(t, m, "payment-v1-0")
	dial := func(port int) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(p.IP, strconv.Itoa(port)), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	assert.Error(t, dial(15001), "15001 must not be reachable from outside the pod")
	assert.Error(t, dial(15081), "the app's behaviour endpoint must not be reachable from outside the pod")
	assert.NoError(t, dial(8080), "the sidecar's inbound listener")
	assert.NoError(t, dial(15090), "the sidecar's stats")

	// The images are keyed on the binary's content: a second mesh builds nothing.
	again := startMesh(t, registry.DefaultTopology())
	assert.Empty(t, again.Images().Built)
	assert.Equal(t, m.Images().Sidecar, again.Images().Sidecar)
}

func TestKillIsSIGKILLAndRestartKeepsTheAddress(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	cli := engine(t)
	ctx := context.Background()
	const name = "payment-v2-0"
	before := pod(t, m, name).IP
	app, sc := m.Containers(name)
	require.NoError(t, m.CrashPod(ctx, name))
	for _, id := range []string{app, sc} {
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		require.NoError(t, err)
		assert.False(t, ins.Container.State.Running, "a killed pod's processes are gone")
		assert.EqualValues(t, "exited", ins.Container.State.Status)
		assert.Equal(t, 137, ins.Container.State.ExitCode, "128+SIGKILL")
	}
	// The pod's sandbox keeps its network namespace, as a Kubernetes pod
	// does when its containers crash: the address answers, and refuses.
	_, err := net.DialTimeout("tcp", net.JoinHostPort(before, "8080"), 2*time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "a crashed pod's address refuses at once, not a SYN into nowhere")
	require.NoError(t, m.RestartPod(ctx, name))
	// RestartPod returns once the sidecar has initialized, and only then is
	// the endpoint ready: the dial below needs no wait.
	assert.True(t, pod(t, m, name).Ready)
	r, _ := state(t, cli, app)
	assert.True(t, r)
	assert.Equal(t, before, pod(t, m, name).IP)
	c, err := net.DialTimeout("tcp", net.JoinHostPort(before, "8080"), 2*time.Second)
	require.NoError(t, err, "the restarted sidecar serves on the same address")
	c.Close()
}

func TestPauseFreezesTheAppsCgroup(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	cli := engine(t)
	ctx := context.Background()
	const name = "order-v1-0"
	app, sc := m.Containers(name)
	require.NoError(t, m.PausePod(ctx, name))
	_, paused := state(t, cli, app)
	assert.True(t, paused)
	_, scPaused := state(t, cli, sc)
	assert.False(t, scPaused, "the sidecar goes on")
	if fs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer/docker", app, "freezer.state")); err == nil {
		assert.Equal(t, "FROZEN", strings.TrimSpace(string(fs)), "the cgroup freezer holds the app")
	} else {
		t.Logf("no cgroup v1 freezer file to read (%v); the engine's Paused state stands", err)
	}
	require.NoError(t, m.ResumePod(ctx, name))
	_, paused = state(t, cli, app)
	assert.False(t, paused)
}

func TestDropInboundDropsPacketsInThePodsNamespace(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	ctx := context.Background()
	p := pod(t, m, "payment-v1-1")
	addr := net.JoinHostPort(p.IP, "8080")
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	c.Close()
	undo, err := m.DropInbound(ctx, p.Name, nil)
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", addr, time.Second)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "a dropped SYN times out rather than being refused: %v", err)
	m15090, err := net.DialTimeout("tcp", net.JoinHostPort(p.IP, "15090"), 2*time.Second)
	require.NoError(t, err, "only the pod's service port is dropped")
	m15090.Close()
	require.NoError(t, undo(ctx))
	c, err = net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err, "the drop is taken off")
	c.Close()
}

func TestSetAppBehaviourReachesTheContainer(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	ctx := context.Background()
	one := 1.0
	for _, p := range m.Pods() {
		if p.Service == "payment" {
			require.NoError(t, m.SetAppBehaviour(ctx, p.Name, runtime.AppBehaviour{ErrorRate: &one, ErrorStatus: 500}))
		}
	}
	code, err := order(t, m)
	require.NoError(t, err)
	assert.Equal(t, 500, code, "every payment pod now fails and order passes it up")
	for _, p := range m.Pods() {
		if p.Service == "payment" {
			require.NoError(t, m.SetAppBehaviour(ctx, p.Name, runtime.AppBehaviour{}))
		}
	}
	code, err = order(t, m)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
}

// resources counts the containers and networks that carry a label.
func resources(t *testing.T, cli *testcontainers.DockerClient, label string) (containers, networks int) {
	t.Helper()
	f := client.Filters{}.Add("label", label)
	cs, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	require.NoError(t, err)
	ns, err := cli.NetworkList(context.Background(), client.NetworkListOptions{Filters: f})
	require.NoError(t, err)
	return len(cs.Items), len(ns.Items)
}

func TestStopLeavesNothingOfTheRun(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	cli := engine(t)
	label := docker.LabelRun + "=" + m.Run()
	c, n := resources(t, cli, label)
	require.Equal(t, 16, c, "5 pods × (sandbox + app + sidecar) + the gateway")
	require.Equal(t, 1, n)
	require.NoError(t, m.Stop(context.Background()))
	c, n = resources(t, cli, label)
	assert.Zero(t, c)
	assert.Zero(t, n)
}

// proc is a meshbench process whose stderr the test reads line by line.
type proc struct {
	cmd   *exec.Cmd
	lines chan string // closed at EOF
	done  chan result
}

// meshbench starts the static binary on a scenario and returns it once its
// mesh is up and the load has started.
func meshbench(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan result, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		var all strings.Builder
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- result{cmd.Wait(), all.String()}
	}()
	p.waitFor(t, "load starts")
	return p
}

// waitFor reads stderr until a line contains s.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				r := <-p.done
				p.done <- r
				t.Fatalf("meshbench ended before it said %q: %v\n%s", s, r.err, r.stderr)
			}
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			_ = p.cmd.Process.Kill()
			t.Fatalf("meshbench did not say %q within 2 minutes", s)
		}
	}
}

type result struct {
	err    error
	stderr string
}

func TestInterruptsRemoveTheRunsContainersAndNetwork(t *testing.T) {
	needEngine(t)
	cli := engine(t)
	for _, tc := range []struct {
		name    string
		signals int
		exit    int
		says    string
	}{
		{"one Ctrl-C", 1, 1, "interrupted: mesh torn down"},
		{"a second Ctrl-C during the teardown", 2, 130, "interrupted again: removing this run's containers and networks now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := meshbench(t, "run", "-v", "-runtime", "docker", "canary-90-10")
			label := docker.LabelPID + "=" + strconv.Itoa(p.cmd.Process.Pid)
			c, _ := resources(t, cli, label)
			require.Positive(t, c)
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
			if tc.signals == 2 {
				p.waitFor(t, "interrupted: tearing down")
				require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
			}
			select {
			case r := <-p.done:
				var ee *exec.ExitError
				require.ErrorAs(t, r.err, &ee)
				assert.Equal(t, tc.exit, ee.ExitCode())
				assert.Contains(t, r.stderr, tc.says)
			case <-time.After(2 * time.Minute):
				_ = p.cmd.Process.Kill()
				t.Fatal("meshbench did not stop")
			}
			c, n := resources(t, cli, label)
			assert.Zero(t, c, "containers left")
			assert.Zero(t, n, "networks left")
		})
	}
}

func TestDownRemovesWhatAKilledRunLeft(t *testing.T) {
	needEngine(t)
	cli := engine(t)
	p := meshbench(t, "run", "-v", "-runtime", "docker", "canary-90-10")
	cmd := p.cmd
	label := docker.LabelPID + "=" + strconv.Itoa(cmd.Process.Pid)
	require.NoError(t, cmd.Process.Kill())
	<-p.done
	c, n := resources(t, cli, label)
	require.Positive(t, c, "a SIGKILLed meshbench cannot clean up: its containers stay")
	require.Equal(t, 1, n)
	out, err := exec.Command(binary, "down").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "pid "+strconv.Itoa(cmd.Process.Pid))
	c, n = resources(t, cli, label)
	assert.Zero(t, c)
	assert.Zero(t, n)
}

// The catalog's chaos scenarios use the container mechanisms: a kill is a
// docker kill, a pause a docker pause, and the result's fault record says so.
func TestCatalogChaosUsesContainerMechanisms(t *testing.T) {
	needEngine(t)
	for name, want := range map[string]string{
		"pod-kill-masked-by-retries-and-ejection": "docker kill (SIGKILL)",
		"partition-bounded-by-timeout":            "nftables drop rules in the pod's network namespace",
	} {
		t.Run(name, func(t *testing.T) {
			sc, err := catalog.Load(name)
			require.NoError(t, err)
			// The mechanisms and what the mesh does under them are judged
			// here; the scenarios' latency bounds are the catalog's (make
			// scenario RUNTIME=docker), not a unit test's: on two shared
			// cores a second of scheduling stall beside a test package
			// (partition p99 813 ms once in CI, 400 ms bound) is no fault
			// of the mesh. The drop is asserted by count.
			c := *sc
			noLatency := func(es []expect.Expectation) []expect.Expectation {
				return slices.DeleteFunc(slices.Clone(es), func(e expect.Expectation) bool { _, ok := e.Kind.(*expect.Latency); return ok })
			}
			c.Expect = noLatency(sc.Expect)
			require.Less(t, len(c.Expect), len(sc.Expect), "a latency bound was dropped")
			if sc.SteadyState != nil {
				ss := *sc.SteadyState
				ss.Expect = noLatency(ss.Expect)
				c.SteadyState = &ss
			}
			sc = &c
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, err := run.Run(ctx, sc, run.Options{Runtime: docker.Runtime{Binary: binary}})
			require.NoError(t, err)
			assert.Equal(t, "docker", res.Environment.Runtime)
			require.NotEmpty(t, res.Faults)
			for _, f := range res.Faults {
				assert.Contains(t, f.Mechanism, want, "fault %s", f.Name)
				assert.Empty(t, f.Error)
			}
			for _, c := range res.Checks {
				assert.True(t, c.Passed, "%s: %s", c.Name, c.Summary)
			}
		})
	}
}

// A container of the run that stopped is named, with its status and last
// words, where a mesh that does not converge is reported.
func TestExitedNamesAStoppedContainer(t *testing.T) {
	m := startMesh(t, registry.DefaultTopology())
	ctx := context.Background()
	assert.Empty(t, docker.Exited(m, ctx), "nothing has stopped")
	_, sc := m.Containers("payment-v1-0")
	cli := engine(t)
	_, err := cli.ContainerKill(ctx, sc, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	w := cli.ContainerWait(ctx, sc, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
	case err := <-w.Error:
		require.NoError(t, err)
	}
	got := docker.Exited(m, ctx)
	assert.Contains(t, got, "payment-v1-0-sidecar: Exited (137)")
}
