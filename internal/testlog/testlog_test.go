package testlog

import (
	"fmt"
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
