package testlog

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestRingKeepsNewest: the ring holds the newest lines, oldest first,
// before and after it wraps.
func TestRingKeepsNewest(t *testing.T) {
	r := &ring{lines: make([]string, 3)}
	fmt.Fprint(r, "a\nb\n")
	if got := r.String(); got != "a\nb" {
		t.Fatalf("before wrapping: %q", got)
	}
	for i := range 5 {
		fmt.Fprintf(r, "line %d\n", i)
	}
	if got, want := r.String(), strings.Join([]string{"line 2", "line 3", "line 4"}, "\n"); got != want {
		t.Fatalf("after wrapping: %q, want %q", got, want)
	}
}

// TestQuietPubsub: debug records of a logger tagged subsystem=pubsub are
// dropped; its warnings, and other loggers' debug records, are kept.
func TestQuietPubsub(t *testing.T) {
	r := &ring{lines: make([]string, 10)}
	log := slog.New(quietPubsub{Handler: slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug})})
	ps := log.With("node", "a").With("subsystem", "pubsub")
	ps.Debug("sent")
	ps.Warn("rejected")
	log.With("subsystem", "heads").Debug("asked")
	got := r.String()
	if strings.Contains(got, "msg=sent") || !strings.Contains(got, "msg=rejected") || !strings.Contains(got, "msg=asked") {
		t.Fatalf("logged:\n%s", got)
	}
}
