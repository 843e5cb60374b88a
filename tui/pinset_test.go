package tui

import (
	"testing"
	"time"

	"github.com/pinfold/pinfold/follower"
)

func TestPinsetState(t *testing.T) {
	since := time.Date(2026, 12, 3, 6, 30, 5, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name string
		p    follower.PinsetInfo
		want string
	}{
		{"caught up", follower.PinsetInfo{CaughtUp: true}, "caught up"},
		{"syncing", follower.PinsetInfo{}, "syncing"},
		{"error", follower.PinsetInfo{Error: "no peer has block x"}, "syncing (no peer has block x)"},
		{"no curator", follower.PinsetInfo{CaughtUp: true, NoCuratorSince: &since},
			"no curator reachable since 2026-12-03 05:30:05 UTC; the pinset may be behind"},
		{"no curator, syncing", follower.PinsetInfo{NoCuratorSince: &since},
			"syncing; no curator reachable since 2026-12-03 05:30:05 UTC; the pinset may be behind"},
	} {
		if got := PinsetState(tc.p); got != tc.want {
			t.Errorf("%s: PinsetState = %q, want %q", tc.name, got, tc.want)
		}
	}
}
