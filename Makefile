# pinfold: the commands the README and CI use.
GO ?= go
# FUZZTIME is an execution count ("Nx"), not a duration: a duration races the
# fuzz coordinator's deadline in Go 1.26 (golang/go#75804) and fails at
# random with "context deadline exceeded" and no crasher.
FUZZTIME ?= 20000x

.PHONY: test check fuzz bench build

## test: every test, with the race detector (the README's test command)
test:
	$(GO) test -race -timeout 15m ./...

## check: formatting, vet and staticcheck
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	staticcheck ./...

## fuzz: run every Go fuzz target for FUZZTIME
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
	  done; \
	done

## bench: the benchmarks the issues report, on one core
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./...

## build: the two programs into ./bin
build:
	$(GO) build -o bin/ ./cmd/...
