# meshbench — one command for each job. Tools come from the Go module proxy
# at pinned versions (go run pkg@version): nothing is installed by hand.
SHELL       := bash
.SHELLFLAGS := -eo pipefail -c
GO          ?= go
SCENARIO    ?=
RUNS        ?= runs
RUNTIME     ?= local
# meshbench is built static: the docker runtime puts this very binary in its
# images (FROM scratch), so the proxies always run the control plane's build.
STATIC      := CGO_ENABLED=0
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCHTIME   ?= 2000x

.PHONY: all scenario scenario-docker scenario-kind test-kind test test-docker race lint bench fidelity fidelity-live ci build clean docker-engine prometheus chromium

all: build test

build:
	$(STATIC) $(GO) build -o bin/meshbench ./cmd/meshbench
	$(GO) build -o bin/fakesvc ./cmd/fakesvc

## scenario: run the whole catalog, or one with SCENARIO=canary-90-10;
## RUNTIME=docker runs it in containers (needs an engine: make docker-engine);
## PARALLEL=6 runs up to six scenarios at once (local and docker), the
## longest first, one mesh starting at a time, only while their request
## rates add up to 500/s per CPU (-rate-budget) and the CPU would be at
## most 60% busy with the next: on 2 cores the catalog then takes about
## 85 s instead of about 370 s. Their latency bounds still see each
## other's load, so the default stays 1, as CI runs it
PARALLEL ?= 1
scenario:
	$(STATIC) $(GO) run ./cmd/meshbench run -runtime $(RUNTIME) -parallel $(PARALLEL) -out $(RUNS) $(SCENARIO)

## scenario-docker: the catalog on the docker runtime
scenario-docker:
	$(MAKE) scenario RUNTIME=docker

## test-kind: the kind runtime's tests alone (make kind-images first)
test-kind:
	$(GO) test -count=1 -timeout 30m ./sim/kind/
	$(GO) test -count=1 -run 'OnKind' ./cmd/meshbench/

## scenario-kind: the scenarios CI checks the kind runtime on (make
## kind-images first); KIND_SCENARIOS="..." picks others
KIND_SCENARIOS ?= canary-90-10 mtls-strict-refuses-plaintext
scenario-kind:
	$(MAKE) scenario RUNTIME=kind SCENARIO="$(KIND_SCENARIOS)"

## docker-engine: nothing where a Docker engine answers; otherwise (Debian,
## root) install docker.io, configure and start dockerd
docker-engine:
	bash scripts/docker-engine.sh

## prometheus: nothing where `prometheus --version` works; otherwise (Debian,
## root or sudo) install Debian's prometheus package, its service not
## started, for the live Prometheus test (observe/prometheus_test.go), which
## skips without it unless MESHBENCH_REQUIRE names prometheus (CI's does)
prometheus:
	bash scripts/install-prometheus.sh

## chromium: nothing where /usr/bin/chromium is; otherwise (Debian, root or
## sudo) install Debian's chromium for the HTML report's browser test
## (reports/browser_test.go), which skips without it unless
## MESHBENCH_REQUIRE names chromium (CI's does)
chromium:
	bash scripts/install-chromium.sh

## test: every test, with the race detector on the concurrent parts, and
## last the proxyless gRPC comparison, whose table of verdicts it prints; the
## docker and kind runtimes' tests skip, saying why, where no engine answers
## (or no kind images are built). Each runtime's tests run alone, after the
## others: containers or a cluster beside other packages' tests on the same
## 2 cores skew the latency bounds of the chaos scenarios they run.
PROXYLESS_TEST := ^TestProxylessGRPCMatchesBuiltin$$
test:
	$(GO) test -count=1 -skip '$(PROXYLESS_TEST)' $$($(GO) list ./... | grep -v -e /sim/docker -e /sim/kind)
	$(GO) test -count=1 ./sim/docker/
	$(GO) test -count=1 -timeout 30m ./sim/kind/
	$(GO) test -race -count=1 -skip '$(PROXYLESS_TEST)' $$($(GO) list ./sim/... ./fakesvc/... ./scenarios/... | grep -v -e /sim/docker -e /sim/kind)
	@echo "proxyless gRPC against the builtin sidecar, the catalog's gRPC scenarios:"
	$(GO) test -count=1 -v -run '$(PROXYLESS_TEST)' ./scenarios/run/ | grep -v -e '^=== RUN'

## fuzz: every fuzz target, one after another (the parsers of scenario
## files, the units, the sidecar's xDS compilers), each for a number of
## executions sized to take about 20-40 s here, and at most FUZZ_TIMEOUT.
## Counts, not durations: with a duration, Go 1.26's fuzz coordinator can
## fail a target with "context deadline exceeded" at the end of -fuzztime
## having found nothing (golang/go#75804, fixed in Go 1.27).
## FUZZTIME=30s runs every target for a duration instead.
FUZZ_TIMEOUT ?= 3m
FUZZ = $(GO) test -run '^$$' -timeout $(FUZZ_TIMEOUT) -fuzz '^$(1)$$' -fuzztime $(if $(FUZZTIME),$(FUZZTIME),$(2)) $(3)
.PHONY: fuzz
fuzz:
	$(call FUZZ,FuzzLoadFS,50000x,./scenarios/spec)
	$(call FUZZ,FuzzSpecConverter,100000x,./scenarios/spec)
	$(call FUZZ,FuzzByteRate,150000x,./scenarios/spec)
	$(call FUZZ,FuzzParseDuration,1000000x,./internal/units)
	$(call FUZZ,FuzzParseRate,1000000x,./internal/units)
	$(call FUZZ,FuzzCompileRoutes,50000x,./sim/sidecar)
	$(call FUZZ,FuzzRouteRegexMatch,200000x,./sim/sidecar)
	$(call FUZZ,FuzzCompileRBAC,150000x,./sim/sidecar)
	$(call FUZZ,FuzzDecodeTraces,60000x,./reports)

## test-docker: the docker runtime's tests alone, verbose
test-docker:
	$(GO) test -count=1 -v ./sim/docker/

## lint: formatting, vet and staticcheck
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd fidelity && $(GO) mod tidy -diff

## bench: every figure of issue #14 in one run and one summary
## (BENCH_DIR/summary.md, printed at the end): the sidecar hop and
## throughput benchmarks at BENCH_BASE and at the working tree, compared by
## benchstat; the heap per sidecar at 1,000 rps; the xDS push at scale
## (1,000 services x 3 pods to 100 sidecars, to full ACK) with the control
## plane's heap; the benchmark scenarios (canary-knee: the canary path's
## capacity, stepped to 4,000/s); and the catalog's wall time at
## BENCH_PARALLEL scenarios at once. No Docker engine needed. A failed
## scenario fails the target after the summary; a baseline that cannot run
## is said in the summary. BASELINE=path/to/result.json also compares
## canary-90-10 against it and fails on a statistically real regression.
## BENCH_BASE defaults to 32a0baa, main as it was when issue #14 measured
## it (before its warm-up drain, load plans and hot-path work landed).
BENCH_STAMP := $(shell date -u +%Y%m%d-%H%M%S)
BENCH_DIR   ?= $(RUNS)/bench-$(BENCH_STAMP)
BENCH_SCENARIOS ?= canary-90-10 no-mesh-config scenarios/bench/canary-knee.yaml
BENCH_BASE     ?= 32a0baae3a7ae878397ebfebd9efcea1e6fabc77
BENCH_COUNT    ?= 3
BENCH_PARALLEL ?= 6
BENCH_SIDECAR  := -run '^$$' -bench '^(BenchmarkSidecarHop|BenchmarkSidecarThroughput)$$' -benchtime $(BENCHTIME) -count $(BENCH_COUNT) ./sim/sidecar/
bench:
	mkdir -p $(BENCH_DIR)
	$(GO) test $(BENCH_SIDECAR) | tee $(BENCH_DIR)/sidecar-new.txt
	$(GO) run ./internal/tools/benchbase -ref $(BENCH_BASE) -o $(BENCH_DIR)/sidecar-base.txt -- $(BENCH_SIDECAR) \
	  || echo "bench: the baseline $(BENCH_BASE) did not run; the summary says so"
	cd $(BENCH_DIR) && $(GO) run $(BENCHSTAT) sidecar-base.txt sidecar-new.txt | tee benchstat.txt
	$(GO) test -run '^$$' -bench '^BenchmarkSidecarHeap$$' -benchtime 1x -count $(BENCH_COUNT) ./sim/sidecar/ | tee $(BENCH_DIR)/heap.txt
	$(GO) test -run '^$$' -bench '^BenchmarkPushToFullACK$$' -benchtime 5x -count $(BENCH_COUNT) ./sim/xdsserver/ | tee $(BENCH_DIR)/push.txt
	$(STATIC) $(GO) run ./cmd/meshbench run -dir $(BENCH_DIR)/scenarios $(BENCH_SCENARIOS) || [ $$? -eq 1 ]
	$(STATIC) $(GO) run ./cmd/meshbench run -runtime local -parallel $(BENCH_PARALLEL) -dir $(BENCH_DIR)/catalog || [ $$? -eq 1 ]
	@if [ -n "$(BASELINE)" ]; then \
	  $(GO) run ./cmd/meshbench report compare --markdown $(BENCH_DIR)/compare.md $(BASELINE) $(BENCH_DIR)/scenarios/canary-90-10/result.json; \
	fi
	$(GO) run ./internal/tools/benchsummary -dir $(BENCH_DIR) -base $(BENCH_BASE) -parallel $(BENCH_PARALLEL)

## fidelity: compare our xDS with Istio's own translator (separate module),
## and, where the kind runtime can run (an engine and make kind-images),
## with a live istiod in a kind cluster (it skips, saying why, elsewhere)
fidelity:
	cd fidelity && $(GO) test -count=1 -timeout 30m ./...

## fidelity-live: only the live check: for canary-90-10 and header-routing,
## istiod's routes and clusters in a kind cluster against sim/xdsgen's
fidelity-live:
	cd fidelity && $(GO) test -count=1 -timeout 30m -v -run '^TestLiveIstiodMatchesXdsgen$$' .

## kind-images: the kind node image, istiod and the proxy image, built
## offline from Go modules and Debian (images/kind/README.md); content-keyed,
## so an unchanged tree rebuilds nothing
include images/kind/kind.mk

## ci: what CI runs, which is .ci/run: Chromium and Prometheus installed and
## their tests required (MESHBENCH_REQUIRE=prometheus,chromium), a Docker
## engine, lint, test, fuzz, fidelity, the catalog on the local and the
## docker runtime, and the kind runtime's stage where CI's time allows it
ci:
	bash .ci/run

clean:
	rm -rf bin $(RUNS) bench.out
