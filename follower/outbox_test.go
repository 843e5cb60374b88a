package follower

import (
	"testing"
	"time"
)

// TestAckDue: an ACK is sent again only once the chain applied a head
// built well after it left without recording it, or after a silence with
// no heads, or when the chain is stuck; never before its backoff, and not
// while such a head's log is still being read.
func TestAckDue(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var never time.Time
	cases := []struct {
		name     string
		now      time.Time
		sent     time.Time
		verified time.Time // newest verified head signed at
		applied  time.Time // newest applied head signed at
		wait     time.Duration
		want     bool
	}{
		{"never sent", at(0), never, never, never, ackRetryFirst, true},
		{"heads built before it left", at(8 * time.Second), at(0), at(-time.Second), at(-time.Second), ackRetryFirst, false},
		{"a head built right after: may not have it yet", at(8 * time.Second), at(0), at(3 * time.Second), at(3 * time.Second), ackRetryFirst, false},
		{"a head built well after, not recording it", at(12 * time.Second), at(0), at(11 * time.Second), at(11 * time.Second), ackRetryFirst, true},
		{"such a head, within the backoff", at(12 * time.Second), at(0), at(11 * time.Second), at(11 * time.Second), 20 * time.Second, false},
		{"such a head verified, its log not read yet", at(40 * time.Second), at(0), at(11 * time.Second), at(-time.Second), ackRetryFirst, false},
		{"chain stuck past the longest backoff", at(ackRetryMax), at(0), at(11 * time.Second), at(-time.Second), ackRetryFirst, true},
		{"no head at all, before the silence", at(29 * time.Second), at(0), at(-time.Second), at(-time.Second), ackRetryFirst, false},
		{"no head at all, after the silence", at(30 * time.Second), at(0), at(-time.Second), at(-time.Second), ackRetryFirst, true},
		{"ledger loaded from disk, no head since", at(30 * time.Second), at(0), never, never, ackRetryFirst, true},
		{"long backoff outlasts the silence", at(45 * time.Second), at(0), never, never, time.Minute, false},
	}
	for _, c := range cases {
		if got := AckDue(c.now, c.sent, c.verified, c.applied, c.wait); got != c.want {
			t.Errorf("%s: AckDue = %v, want %v", c.name, got, c.want)
		}
	}
}
