# whenthen build and test entry points. CI runs `make test` (see .ci/run).

GO ?= go

# Flags for `make test`. -race is affordable while the tree is small: the
# whole suite must stay well under 15 minutes on 2 cores.
TEST_FLAGS ?= -race -count=1 -timeout 12m

# Pinned so lint gives the same answer everywhere; fetched through the Go
# module proxy on first use. (govulncheck is not used: it needs vuln.go.dev,
# which this environment cannot reach.)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Fuzz targets for `make fuzz-short`, as PKG:FuzzName, e.g.
#   FUZZ_TARGETS = ./rules:FuzzLoad ./ingest:FuzzDecode
FUZZ_TARGETS ?= ./rules:FuzzLoad ./rules:FuzzFastEval ./crm:FuzzDecodeRecord ./crm:FuzzDecodeBinary ./internal/jsonx:FuzzJSONX ./internal/yamlfile:FuzzLocate ./ingest:FuzzEnvelopeDecode ./ingest:FuzzDebeziumDecode ./ingest:FuzzConnectSchema ./ingest:FuzzPrecheck ./actions:FuzzAppendJSON ./engine:FuzzEvaluate ./delivery:FuzzParseConfig
# A target that stops with Go's own "context deadline exceeded" at the end
# of -fuzztime and no failing input (golang/go#75804, a race in the fuzzing
# coordinator fixed in Go 1.27) runs once more; any other failure fails.
FUZZTIME ?= 3s

GO_FILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')

.PHONY: build test run bench bench-deliver bench-full lint fuzz-short clean

build:
	$(GO) build -o bin/whenthen ./cmd/whenthen

# scripts/with-services.sh provides what the tests need: PostgreSQL and
# Chromium (for the run history), promtool (deploy/'s alert rules), then
# Redis through scripts/with-redis.sh, installing each as root if it is
# missing.
# Allocation tests of pooled code run again without -race, which makes
# sync.Pool drop items. The short fuzz run after the tests keeps every fuzz
# target exercised in CI.
test:
	scripts/with-services.sh $(GO) test $(TEST_FLAGS) ./...
	$(GO) test -count=1 -run 'Allocs' ./internal/jsonx/... ./crm/... ./ingest/...
	$(MAKE) fuzz-short

# Built first and run directly, so that Ctrl-C ends with dev's own exit code.
run: build
	bin/whenthen dev

# The benchmarks beside the code, one package at a time (they use both cores).
bench:
	scripts/with-redis.sh $(GO) test -run '^$$' -bench 'BenchmarkCompile' -benchtime 1x ./rules
	scripts/with-redis.sh $(GO) test -run '^$$' -bench 'BenchmarkProcess' -benchtime 20000x ./bench
	scripts/with-redis.sh $(GO) test -run '^$$' -bench 'Pipeline|Passthrough' -benchtime 3x ./pipeline

# The delivery benchmark alone (bench/RESULTS.md, "Delivery").
bench-deliver: build
	bin/whenthen bench --scenarios deliver --cpuprofile-dir /tmp/whenthen-prof --json-out /tmp/whenthen-bench-deliver.json

# The whole `whenthen bench` suite, as bench/RESULTS.md records it.
bench-full: build
	bin/whenthen bench --cpuprofile-dir /tmp/whenthen-prof --json-out /tmp/whenthen-bench.json

lint:
	@out=$$(gofmt -l $(GO_FILES)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz-short:
	@if [ -z "$(strip $(FUZZ_TARGETS))" ]; then echo "fuzz-short: FUZZ_TARGETS is empty, nothing to fuzz"; fi
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		$(GO) test -run=NONE -list="^$$name\$$" "$$pkg" | grep -qx "$$name" || \
			{ echo "fuzz-short: no fuzz target $$name in $$pkg"; exit 1; }; \
		echo "fuzz-short: $$pkg $$name for $(FUZZTIME)"; \
		for try in 1 2; do \
			out=$$($(GO) test -run=NONE -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s "$$pkg" 2>&1) && rc=0 || rc=$$?; \
			echo "$$out"; \
			if [ $$rc -eq 0 ]; then break; fi; \
			if [ $$try -eq 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && \
				! echo "$$out" | grep -q -e 'Failing input written' -e 'panic:' -e '_test.go:[0-9]'; then \
				echo "fuzz-short: $$name stopped on Go's own deadline race at -fuzztime (golang/go#75804, fixed in Go 1.27), with no failing input: running it once more"; \
				continue; \
			fi; \
			exit 1; \
		done; \
	done

clean:
	rm -rf bin
