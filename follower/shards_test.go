package follower

import (
	"testing"
	"time"
)

func TestShardStatusClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var r ShardStatus
	r.enter(ShardQueued, t0)
	r.enter(ShardQueued, t0.Add(time.Minute)) // no change: Since stays
	if r.State != ShardQueued || !r.Since.Equal(t0) {
		t.Fatalf("queued: %+v", r)
	}
	r.enter(ShardFetching, t0.Add(2*time.Minute))
	if !r.Since.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("fetching: since %v", r.Since)
	}
	r.fail("pin x: no provider", t0.Add(3*time.Minute))
	r.fail("pin x: no provider", t0.Add(4*time.Minute)) // the same error keeps its time
	if r.ErrorAt != t0.Add(3*time.Minute) {
		t.Fatalf("error at %v", r.ErrorAt)
	}
	r.fail("pin y: timeout", t0.Add(5*time.Minute))
	if r.Error != "pin y: timeout" || !r.ErrorAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("new error: %+v", r)
	}
	r.fail("", t0.Add(6*time.Minute))
	if r.Error != "" || !r.ErrorAt.IsZero() {
		t.Fatalf("cleared: %+v", r)
	}
}
