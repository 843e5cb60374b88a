// Package testlog gives tests a logger whose output is shown only when
// the test fails: the daemons under test log at debug level into a
// bounded buffer of the newest lines, and a failed test prints them, so
// a failure in CI comes with what the nodes did just before it.
package testlog

import (
	"bytes"
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
	return slog.New(slog.NewTextHandler(r, opts))
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
