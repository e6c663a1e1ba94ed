package sidecar_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/sidecar"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// hopRig is one request path three ways: straight to the app, through a
// pair of plain httputil.ReverseProxy servers, and through an outbound and
// an inbound builtin sidecar driven by the real control plane.
type hopRig struct {
	direct, rproxy, mesh *http.Client
	directURL, rproxyURL string
	meshURL              string
	// closeSidecars stops the sidecar pair; it runs once, also at cleanup.
	closeSidecars func()
}

func serve(b *testing.B, addr string, h http.Handler) string {
	b.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

// disableMTLS is a mesh-wide PeerAuthentication DISABLE: the sidecar pair speaks plaintext.
func disableMTLS() meshconfig.Config {
	return meshconfig.Config{PeerAuthentications: []*securityv1.PeerAuthentication{{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: meshconfig.RootNamespace},
		Spec:       security.PeerAuthentication{Mtls: &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_DISABLE}},
	}}}
}

func newHopRig(b *testing.B, cfg meshconfig.Config) *hopRig {
	b.Helper()
	base := [4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), 0}
	next := byte(10)
	alloc := func() (netip.Addr, error) {
		next++
		a := base
		a[3] = next
		return netip.AddrFrom4(a), nil
	}
	body := []byte(`{"service":"echo","version":"v1"}`)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(body)
	})
	reg, err := registry.New(registry.Topology{Services: []registry.Service{
		{Name: "client", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"echo"}},
		{Name: "echo", Versions: []registry.Version{{Name: "v1"}}},
	}}, alloc)
	if err != nil {
		b.Fatal(err)
	}
	client, echo := reg.PodsOf("client")[0], reg.PodsOf("echo")[0]
	appAddr := serve(b, netip.AddrPortFrom(echo.IP, 0).String(), app)
	echo.AppAddr = appAddr
	client.AppAddr = netip.AddrPortFrom(client.IP, 1).String()

	cpIP, _ := alloc()
	cp := xdsserver.New(nil)
	if err := cp.Start(context.Background(), netip.AddrPortFrom(cpIP, 0).String()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cp.Stop)
	authority, err := ca.New(istionames.TrustDomain, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	gen := xdsgen.New(reg, cfg)
	for _, p := range reg.Pods {
		id, _ := authority.WorkloadID(p.Namespace, p.ServiceAccount)
		cert, err := authority.Issue(id)
		if err != nil {
			b.Fatal(err)
		}
		res := gen.ForSidecar(p)
		res.Secrets = xdsgen.Secrets(cert.CertPEM, cert.KeyPEM, authority.RootPEM())
		snap, err := res.Snapshot("1")
		if err != nil {
			b.Fatal(err)
		}
		if err := cp.SetSnapshot(context.Background(), p.NodeID(), snap); err != nil {
			b.Fatal(err)
		}
	}
	var proxies []*sidecar.Sidecar
	closeSidecars := sync.OnceFunc(func() {
		for _, s := range proxies {
			_ = s.Close()
		}
	})
	b.Cleanup(closeSidecars)
	for _, p := range reg.Pods {
		s, err := sidecar.Start(sidecar.Config{NodeID: p.NodeID(), IP: p.IP, XDS: cp.Addr(), Workload: p.Workload, Namespace: p.Namespace, App: p.Service, Version: p.Version, Principal: p.SPIFFEID(istionames.TrustDomain)})
		if err != nil {
			b.Fatal(err)
		}
		proxies = append(proxies, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes := []string{client.NodeID(), echo.NodeID()}
	if err := cp.WaitConverged(ctx, nodes, "1"); err != nil {
		b.Fatal(err)
	}

	rp2IP, _ := alloc()
	rp1IP, _ := alloc()
	appURL, _ := url.Parse("http://" + appAddr)
	rp2 := serve(b, netip.AddrPortFrom(rp2IP, 0).String(), httputil.NewSingleHostReverseProxy(appURL))
	rp2URL, _ := url.Parse("http://" + rp2)
	rp1 := serve(b, netip.AddrPortFrom(rp1IP, 0).String(), httputil.NewSingleHostReverseProxy(rp2URL))

	outbound, _ := url.Parse("http://" + proxies[0].OutboundAddr())
	r := &hopRig{
		direct:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		rproxy:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		mesh:      &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: http.ProxyURL(outbound)}},
		directURL: "http://" + appAddr + "/pay",
		rproxyURL: "http://" + rp1 + "/pay",
		meshURL:   "http://echo.default.svc.cluster.local/pay",

		closeSidecars: closeSidecars,
	}
	b.Cleanup(func() {
		for _, c := range []*http.Client{r.direct, r.rproxy, r.mesh} {
			c.CloseIdleConnections()
		}
	})
	return r
}

func do(b *testing.B, c *http.Client, u string) {
	resp, err := c.Post(u, "application/json", strings.NewReader(`{"amount":42}`))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: status %d", u, resp.StatusCode)
	}
}

// BenchmarkSidecarHop sends sequential requests along four paths,
// interleaved so that machine noise hits all alike: direct, through a pair
// of ReverseProxy servers, through the sidecar pair in plaintext (mTLS
// DISABLE), and through the sidecar pair with mTLS (Istio's default). It
// reports the latency each adds over the direct call at p50 and p99, and the
// sidecar/ReverseProxy ratios.
func BenchmarkSidecarHop(b *testing.B) {
	r := newHopRig(b, disableMTLS())
	tlsRig := newHopRig(b, meshconfig.Config{})
	paths := []struct {
		c *http.Client
		u string
		h *hdrhistogram.Histogram
	}{
		{r.direct, r.directURL, hdrhistogram.New(1, 10_000_000, 3)},
		{r.rproxy, r.rproxyURL, hdrhistogram.New(1, 10_000_000, 3)},
		{r.mesh, r.meshURL, hdrhistogram.New(1, 10_000_000, 3)},
		{tlsRig.mesh, tlsRig.meshURL, hdrhistogram.New(1, 10_000_000, 3)},
	}
	for _, p := range paths { // warm the connection pools
		for i := 0; i < 50; i++ {
			do(b, p.c, p.u)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range paths {
			start := time.Now()
			do(b, p.c, p.u)
			_ = p.h.RecordValue(time.Since(start).Nanoseconds())
		}
	}
	b.StopTimer()
	us := func(ns int64) float64 { return float64(ns) / 1000 }
	d50, d99 := paths[0].h.ValueAtQuantile(50), paths[0].h.ValueAtQuantile(99)
	rp50, rp99 := paths[1].h.ValueAtQuantile(50)-d50, paths[1].h.ValueAtQuantile(99)-d99
	sc50, sc99 := paths[2].h.ValueAtQuantile(50)-d50, paths[2].h.ValueAtQuantile(99)-d99
	tl50, tl99 := paths[3].h.ValueAtQuantile(50)-d50, paths[3].h.ValueAtQuantile(99)-d99
	b.ReportMetric(us(tl50), "mtls-added-p50-µs")
	b.ReportMetric(us(tl99), "mtls-added-p99-µs")
	b.ReportMetric(us(d50), "direct-p50-µs")
	b.ReportMetric(us(d99), "direct-p99-µs")
	b.ReportMetric(us(rp50), "rproxy-added-p50-µs")
	b.ReportMetric(us(rp99), "rproxy-added-p99-µs")
	b.ReportMetric(us(sc50), "sidecar-added-p50-µs")
	b.ReportMetric(us(sc99), "sidecar-added-p99-µs")
	if rp50 > 0 {
		b.ReportMetric(float64(sc50)/float64(rp50), "sidecar/rproxy-p50")
	}
	if rp99 > 0 {
		b.ReportMetric(float64(sc99)/float64(rp99), "sidecar/rproxy-p99")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkSidecarThroughput drives concurrent requests directly and through
// the sidecar pair and charges the extra CPU time to the two sidecars: the
// requests/s one core of sidecar sustains is 2 / (extra CPU per request).
// The heap allocations the mesh path makes beyond the direct one are
// charged to the sidecars likewise, per hop (one sidecar).
func BenchmarkSidecarThroughput(b *testing.B) {
	r := newHopRig(b, disableMTLS())
	var meshAllocs, directAllocs uint64
	run := func(c *http.Client, u string, n int, allocs *uint64) time.Duration {
		before, beforeAllocs := cpuTime(), mallocs()
		defer func() { *allocs = mallocs() - beforeAllocs }()
		work := make(chan struct{}, n)
		for i := 0; i < n; i++ {
			work <- struct{}{}
		}
		close(work)
		done := make(chan struct{})
		for w := 0; w < 16; w++ {
			go func() {
				defer func() { done <- struct{}{} }()
				for range work {
					do(b, c, u)
				}
			}()
		}
		for w := 0; w < 16; w++ {
			<-done
		}
		return cpuTime() - before
	}
	run(r.mesh, r.meshURL, 200, &meshAllocs)
	run(r.direct, r.directURL, 200, &directAllocs)
	b.ResetTimer()
	start := time.Now()
	meshCPU := run(r.mesh, r.meshURL, b.N, &meshAllocs)
	elapsed := time.Since(start)
	directCPU := run(r.direct, r.directURL, b.N, &directAllocs)
	b.StopTimer()
	perReq := float64(meshCPU-directCPU) / float64(b.N) / 2 // two sidecars on the path
	if perReq > 0 {
		b.ReportMetric(float64(time.Second)/perReq, "req/s/sidecar-core")
	}
	// The direct path is one net/http client and one net/http server
	// exchanging a request; a sidecar hop serves one and sends one, so
	// the direct path's rate per core is the most any hop built on
	// net/http's server and transport can reach, with no work of its own.
	if directCPU > 0 {
		b.ReportMetric(float64(b.N)/directCPU.Seconds(), "net/http-floor-req/s/core")
	}
	b.ReportMetric((float64(meshAllocs)-float64(directAllocs))/float64(b.N)/2, "allocs/sidecar-hop")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "mesh-req/s")
}
