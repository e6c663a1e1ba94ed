# meshbench — one command for each job. Tools come from the Go module proxy
# at pinned versions (go run pkg@version): nothing is installed by hand.
SHELL       := bash
.SHELLFLAGS := -eo pipefail -c
GO          ?= go
SCENARIO    ?=
RUNS        ?= runs
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCHTIME   ?= 2000x

.PHONY: all scenario test race lint bench fidelity ci build clean

all: build test

build:
	$(GO) build -o bin/meshbench ./cmd/meshbench
	$(GO) build -o bin/fakesvc ./cmd/fakesvc

## scenario: run the whole catalog, or one with SCENARIO=canary-90-10
scenario:
	$(GO) run ./cmd/meshbench run -out $(RUNS) $(SCENARIO)

## test: every test, with the race detector on the concurrent parts
test:
	$(GO) test -count=1 ./...
	$(GO) test -race -count=1 ./sim/... ./fakesvc/...

## lint: formatting, vet and staticcheck
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: the sidecar benchmarks (hop latency against direct and ReverseProxy,
## throughput) and the benchmark scenarios, results and reports in one run
## folder; BASELINE=path/to/result.json compares canary-90-10 against it and
## fails on a statistically real regression.
BENCH_STAMP := $(shell date -u +%Y%m%d-%H%M%S)
BENCH_DIR   ?= $(RUNS)/bench-$(BENCH_STAMP)
BENCH_SCENARIOS ?= canary-90-10 no-mesh-config
bench:
	mkdir -p $(BENCH_DIR)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 3 ./sim/sidecar/ | tee $(BENCH_DIR)/bench.txt
	$(GO) run $(BENCHSTAT) $(BENCH_DIR)/bench.txt | tee $(BENCH_DIR)/benchstat.txt
	$(GO) run ./cmd/meshbench run -dir $(BENCH_DIR)/scenarios $(BENCH_SCENARIOS)
	@if [ -n "$(BASELINE)" ]; then \
	  $(GO) run ./cmd/meshbench report compare --markdown $(BENCH_DIR)/compare.md $(BASELINE) $(BENCH_DIR)/scenarios/canary-90-10/result.json; \
	fi
	@echo "bench results in $(BENCH_DIR)"

## fidelity: compare our xDS with Istio's own translator (separate module)
fidelity:
	cd fidelity && $(GO) test -count=1 ./...

## ci: what CI runs
ci: lint test fidelity scenario

clean:
	rm -rf bin $(RUNS) bench.out
