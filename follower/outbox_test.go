package follower

import (
	"testing"
	"time"
)

// TestAckDue: an ACK is sent again only once the chain went two heads past
// the head it named without recording it, or after a silence with no
// heads, or when the chain is stuck; never before its backoff, and not
// while verified heads' logs are still being read.
func TestAckDue(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cases := []struct {
		name     string
		now      time.Time
		sent     time.Time
		sentSeq  int64
		verified int64
		applied  int64
		wait     time.Duration
		want     bool
	}{
		{"never sent", at(0), time.Time{}, 0, 0, 0, ackRetryFirst, true},
		{"one head later: it may be in the next", at(6 * time.Second), at(0), 10, 11, 11, ackRetryFirst, false},
		{"two heads later, not recorded", at(6 * time.Second), at(0), 10, 12, 12, ackRetryFirst, true},
		{"two heads later, within the backoff", at(4 * time.Second), at(0), 10, 12, 12, ackRetryFirst, false},
		{"heads verified, logs not read yet", at(40 * time.Second), at(0), 10, 13, 10, ackRetryFirst, false},
		{"chain stuck past the longest backoff", at(ackRetryMax), at(0), 10, 13, 10, ackRetryFirst, true},
		{"no head at all, before the silence", at(29 * time.Second), at(0), 10, 10, 10, ackRetryFirst, false},
		{"no head at all, after the silence", at(30 * time.Second), at(0), 10, 10, 10, ackRetryFirst, true},
		{"one head, then silence", at(31 * time.Second), at(0), 10, 11, 11, ackRetryFirst, true},
		{"long backoff outlasts the silence", at(45 * time.Second), at(0), 10, 10, 10, time.Minute, false},
		{"long backoff, heads went past", at(61 * time.Second), at(0), 10, 14, 14, time.Minute, true},
	}
	for _, c := range cases {
		if got := AckDue(c.now, c.sent, c.sentSeq, c.verified, c.applied, c.wait); got != c.want {
			t.Errorf("%s: AckDue = %v, want %v", c.name, got, c.want)
		}
	}
}
