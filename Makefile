# pinfold: the commands the README and CI use.
GO ?= go
# FUZZTIME is an execution count ("Nx"), not a duration: a duration races the
# fuzz coordinator's deadline in Go 1.26 (golang/go#75804) and fails at
# random with "context deadline exceeded" and no crasher.
FUZZTIME ?= 20000x
# Targets that run a whole model per input (FuzzViewFits renders both
# dashboards, a few ms each) get fewer executions, so CI stays in time.
FUZZTIME_SLOW ?= 4000x
SLOW_FUZZ := FuzzViewFits

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
# The targets are found in the sources: `go test -list` would build every
# test binary once more just to name them.
fuzz:
	@set -e; for dir in $$(git grep -l '^func Fuzz' -- '*_test.go' | xargs -n1 dirname | sort -u); do \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go); do \
	    n=$(FUZZTIME); case " $(SLOW_FUZZ) " in *" $$target "*) n=$(FUZZTIME_SLOW);; esac; \
	    echo "fuzz ./$$dir $$target ($$n)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $$n -fuzzminimizetime 2s ./$$dir; \
	  done; \
	done

## bench: the benchmarks the issues report, on one core
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./...

## build: the two programs into ./bin
build:
	$(GO) build -o bin/ ./cmd/...
