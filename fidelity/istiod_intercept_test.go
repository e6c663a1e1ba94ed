package fidelity

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/sidecar"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// istioIptables is the nat table pilot-agent sets up in a pod, as
// `pilot-agent istio-iptables --dry-run -p 15001 -z 15006 -u 1337 -m
// REDIRECT -i '*' -x ” -b '*' -d 15090,15021,15020` (Istio 1.31) prints it:
// outbound TCP to 15001 except from uid/gid 1337, from 127.0.0.6 over lo
// and to 127.0.0.1; inbound TCP to 15006 except 15008, 15090, 15021, 15020.
const istioIptables = `*nat
-N ISTIO_INBOUND
-N ISTIO_REDIRECT
-N ISTIO_IN_REDIRECT
-N ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
`

// The helper processes of TestInterceptionInNetns, started as this test
// binary with -test.run=^TestInterceptHelper$ and the role in the environment.
const (
	envRole = "MESHBENCH_INTERCEPT_ROLE" // "sidecar" or "app"
	envNode = "MESHBENCH_INTERCEPT_NODE"
	envIP   = "MESHBENCH_INTERCEPT_IP"
	envXDS  = "MESHBENCH_INTERCEPT_XDS"
	envURL  = "MESHBENCH_INTERCEPT_URL"
)

// TestInterceptHelper is a helper process, not a test. As "sidecar" it
// drops to uid and gid 1337, as pilot-agent runs Envoy, and runs a builtin
// sidecar in interception mode; as "app" it serves :8080 (answering with
// the peer address it saw), then calls the URL and prints what came back.
// Both run until their stdin closes.
func TestInterceptHelper(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		t.Skip("helper process of TestInterceptionInNetns")
	}
	switch role {
	case "sidecar":
		if err := syscall.Setgroups(nil); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setgid(1337); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(1337); err != nil {
			t.Fatal(err)
		}
		s, err := sidecar.Start(sidecar.Config{NodeID: os.Getenv(envNode), IP: netip.MustParseAddr(os.Getenv(envIP)), XDS: os.Getenv(envXDS),
			Intercept: true, Workload: "order-v1", Namespace: "default", App: "order", Version: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fmt.Println("STARTED")
	case "app":
		lis, err := net.Listen("tcp", ":8080")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "app saw %s", r.RemoteAddr)
		})}
		go func() { _ = srv.Serve(lis) }()
		defer srv.Close()
		fmt.Println("LISTENING")
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(os.Getenv(envURL))
		if err != nil {
			fmt.Printf("RESULT error %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("RESULT %d %s\n", resp.StatusCode, strings.ReplaceAll(string(b), "\n", " "))
		}
	default:
		t.Fatalf("unknown role %q", role)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startHelper runs this test binary in the network namespace ns in a role.
func startHelper(t *testing.T, ns, role string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestInterceptHelper$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), envRole+"="+role), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return h
}

// expect waits for a line with prefix and returns the rest.
func (h *helper) expect(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				t.Fatalf("helper ended before %q", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
		case <-ctx.Done():
			t.Fatalf("no %q from the helper in time", prefix)
		}
	}
}

func run(t *testing.T, stdin string, name string, args ...string) error {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// TestInterceptionInNetns runs a pod as Kubernetes with Istio has it: a
// network namespace with istio-iptables' nat rules, the builtin sidecar in
// interception mode as uid 1337 fed istiod's real xDS for the caller pod
// of the default topology, and an app beside it. The app's plain HTTP call
// to payment's Service VIP must be captured (15001), routed by istiod's
// listener and routes and reach a payment pod; a call from outside to the
// app's port must be captured too (15006) and reach the app from 127.0.0.6,
// the source of istiod's inbound cluster. Root only.
func TestInterceptionInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and iptables")
	}
	for _, tool := range []string{"ip", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A /24 of 10.200.0.0/13 for the pods: the caller pod in the namespace,
	// every other pod on the host end of the veth.
	subnet := netip.AddrFrom4([4]byte{10, byte(200 + rand.IntN(8)), byte(rand.IntN(256)), 0})
	all, err := catalog.All()
	if err != nil {
		t.Fatal(err)
	}
	var sc *spec.Scenario
	for _, c := range all {
		if c.Name == "no-mesh-config" {
			sc = c
		}
	}
	if sc == nil {
		t.Fatal("no scenario no-mesh-config")
	}
	side, reg, pod := istiodFor(t, sc, subnet)
	gw := netip.AddrFrom4([4]byte{subnet.As4()[0], subnet.As4()[1], subnet.As4()[2], 254})

	id := strconv.Itoa(rand.IntN(1 << 20))
	ns, host, peerIf := "mbicpt"+id, "mbh"+id, "mbp"+id
	if err := run(t, "", "ip", "netns", "add", ns); err != nil {
		t.Skipf("cannot make a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = run(t, "", "ip", "netns", "del", ns) })
	t.Cleanup(func() { _ = run(t, "", "ip", "link", "del", host) })
	steps := [][]string{
		{"ip", "link", "add", host, "type", "veth", "peer", "name", peerIf},
		{"ip", "link", "set", peerIf, "netns", ns},
		{"ip", "addr", "add", gw.String() + "/24", "dev", host},
		{"ip", "link", "set", host, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "add", pod.IP.String() + "/24", "dev", peerIf},
		{"ip", "-n", ns, "link", "set", peerIf, "up"},
		{"ip", "-n", ns, "route", "add", "default", "via", gw.String()},
	}
	for _, p := range reg.Pods {
		if p != pod {
			steps = append(steps, []string{"ip", "addr", "add", p.IP.String() + "/32", "dev", host})
		}
	}
	for _, s := range steps {
		if err := run(t, "", s[0], s[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(t, istioIptables, "ip", "netns", "exec", ns, "iptables-restore"); err != nil {
		t.Skipf("cannot install istio-iptables' rules: %v", err)
	}

	// The payment pods, on the host: each answers with its address and
	// what it was sent.
	var vip netip.Addr
	v := serviceCIDR.Addr()
	for _, s := range reg.Services {
		v = v.Next()
		if s.Name == "payment" {
			vip = v
		}
	}
	for _, p := range reg.PodsOf("payment") {
		lis, err := net.Listen("tcp", net.JoinHostPort(p.IP.String(), strconv.Itoa(p.Port)))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "payment %s from %s peer %s", p.IP, r.RemoteAddr, r.Header.Get(sidecar.HeaderPeerID))
		})}
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(func() { _ = srv.Close() })
	}

	srv := xdsserver.New(nil)
	if err := srv.Start(ctx, net.JoinHostPort(gw.String(), "0")); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	node := pod.Name + "." + pod.Namespace
	if err := srv.SetSnapshot(ctx, node, snapshotOf(t, side, "istiod-1")); err != nil {
		t.Fatal(err)
	}
	sc1 := startHelper(t, ns, "sidecar", envNode+"="+node, envIP+"="+pod.IP.String(), envXDS+"="+srv.Addr())
	sc1.expect(t, ctx, "STARTED")
	for _, typ := range xdsserver.TypeURLs {
		for srv.Acked(node, typ) != "istiod-1" {
			if n := srv.Nacks(); len(n) > 0 {
				t.Fatalf("NACK: %+v", n[0])
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s not ACKed in time", typ)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	// Outbound: the app calls payment's VIP; iptables sends it to 15001.
	app := startHelper(t, ns, "app", envURL+"=http://"+vip.String()+"/pay")
	app.expect(t, ctx, "LISTENING")
	res := app.expect(t, ctx, "RESULT")
	t.Logf("outbound: %s", res)
	if !strings.HasPrefix(res, "200 payment ") || !strings.Contains(res, "from "+pod.IP.String()+":") || !strings.Contains(res, "peer "+node) {
		t.Errorf("the app's call to %s: %q, want 200 from a payment pod, sent by the sidecar (from %s, with its peer id %s)", vip, res, pod.IP, node)
	}

	// Inbound: a call from outside the pod to the app's port goes through 15006.
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(pod.IP.String(), strconv.Itoa(pod.Port)) + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("inbound: %d %s", resp.StatusCode, b)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "app saw 127.0.0.6:") {
		t.Errorf("inbound call: %d %q, want 200 from the app, which sees the sidecar's 127.0.0.6", resp.StatusCode, b)
	}

	// The sidecar's metrics (15090 is not redirected) count both sides.
	resp, err = c.Get("http://" + net.JoinHostPort(pod.IP.String(), strconv.Itoa(sidecar.PrometheusPort)) + "/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`reporter="source"`, `reporter="destination"`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("the sidecar's istio_requests_total has no %s series", want)
		}
	}
}
