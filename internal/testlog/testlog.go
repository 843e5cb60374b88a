// Package testlog gives tests a logger whose output is shown only when
// the test fails: the daemons under test log at debug level into a
// bounded buffer of the newest lines, and a failed test prints them, so
// a failure in CI comes with what the nodes did just before it.
package testlog

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// Lines is how many of the newest log lines a failed test prints.
const Lines = 600

// New returns a debug-level logger for t. Its newest Lines lines are
// printed when t fails; with PINFOLD_TEST_LOG=1 in the environment every
// line goes to stderr as it is written instead.
func New(t testing.TB) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if os.Getenv("PINFOLD_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts)).With("test", t.Name())
	}
	r := &ring{lines: make([]string, Lines)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the newest %d log lines of the nodes under test:\n%s", Lines, r.String())
		}
	})
	return slog.New(quietPubsub{Handler: slog.NewTextHandler(r, opts)})
}

// quietPubsub drops the debug records of loggers tagged subsystem=pubsub:
// gossipsub traces every RPC sent and received at debug level, which
// would fill the buffer with them and cost the nodes under test the
// formatting (a 20-node test timed out in CI with them on).
type quietPubsub struct {
	slog.Handler
	quiet bool
}

func (h quietPubsub) Enabled(ctx context.Context, l slog.Level) bool {
	if h.quiet && l < slog.LevelInfo {
		return false
	}
	return h.Handler.Enabled(ctx, l)
}

func (h quietPubsub) WithAttrs(attrs []slog.Attr) slog.Handler {
	quiet := h.quiet
	for _, a := range attrs {
		quiet = quiet || (a.Key == "subsystem" && a.Value.String() == "pubsub")
	}
	return quietPubsub{Handler: h.Handler.WithAttrs(attrs), quiet: quiet}
}

func (h quietPubsub) WithGroup(name string) slog.Handler {
	return quietPubsub{Handler: h.Handler.WithGroup(name), quiet: h.quiet}
}

// ring keeps the newest lines written to it. Safe for concurrent use.
type ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

// Write stores each complete line of p; slog handlers write whole lines.
func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for line := range bytes.Lines(p) {
		r.lines[r.next] = strings.TrimSuffix(string(line), "\n")
		r.next = (r.next + 1) % len(r.lines)
		r.full = r.full || r.next == 0
	}
	return len(p), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if r.full {
		out = append(out, r.lines[r.next:]...)
	}
	out = append(out, r.lines[:r.next]...)
	return strings.Join(out, "\n")
}
