package curator

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/ledger"
)

func TestAuditQueueOrder(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var q auditQueue
	r := rand.New(rand.NewPCG(1, 2))
	var want []int64
	for i := range 1000 {
		off := r.Int64N(1000)
		q.push(auditKey{peer.ID("p"), int64(i)}, base.Add(time.Duration(off)*time.Second))
		want = append(want, off)
	}
	slices.Sort(want)
	if _, ok := q.popDue(base.Add(-time.Second)); ok {
		t.Fatal("popped a copy before any was due")
	}
	var got []int64
	last := int64(-1)
	for _, off := range want {
		now := base.Add(time.Duration(off) * time.Second)
		for {
			k, ok := q.popDue(now)
			if !ok {
				break
			}
			got = append(got, off)
			if k.shard < 0 || k.shard >= 1000 {
				t.Fatalf("popped unknown key %v", k)
			}
			if off < last {
				t.Fatalf("popped out of order")
			}
			last = off
		}
	}
	if len(got) != 1000 || q.Len() != 0 {
		t.Fatalf("popped %d of 1000, %d left", len(got), q.Len())
	}
	q.push(auditKey{peer.ID("p"), 1}, base)
	q.reset()
	if _, ok := q.popDue(base.Add(time.Hour)); ok || q.Len() != 0 {
		t.Fatal("reset left an entry")
	}
}

func TestAuditDueAt(t *testing.T) {
	const interval = time.Hour
	k := auditKey{peer.ID("holder"), 7}
	audited := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later := audited.Add(10 * time.Minute)
	retry := audited.Add(5 * time.Second)
	stored := ledger.Holding{Peer: string(k.holder), Shard: k.shard, State: ledger.Stored, Since: 3, Audited: 5, AuditTime: audited.UnixMilli()}
	fresh := stored
	fresh.Since, fresh.Audited, fresh.AuditTime = 6, 0, 0
	tests := []struct {
		name      string
		h         ledger.Holding
		run       *auditRun
		done      *auditDone
		wantAt    time.Time // zero: at once
		wantRange bool      // due in [last+0.9 interval, last+1.1 interval)
		last      time.Time
		wantQueue bool
	}{
		{name: "audited: an interval after the audit", h: stored, wantRange: true, last: audited, wantQueue: true},
		{name: "a newer result signed here counts", h: stored, done: &auditDone{at: later, since: 3}, wantRange: true, last: later, wantQueue: true},
		{name: "an older signed result does not", h: stored, done: &auditDone{at: audited.Add(-time.Hour), since: 3}, wantRange: true, last: audited, wantQueue: true},
		{name: "new commitment: at once", h: fresh, wantQueue: true},
		{name: "new commitment audited here, not recorded yet", h: fresh, done: &auditDone{at: later, since: 6}, wantRange: true, last: later, wantQueue: true},
		{name: "retry waiting", h: stored, run: &auditRun{next: retry}, wantAt: retry, wantQueue: true},
		{name: "attempt under way", h: stored, run: &auditRun{next: retry, active: true}, wantQueue: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuditor(1)
			if tt.run != nil {
				a.runs[k] = tt.run
			}
			if tt.done != nil {
				a.done[k] = *tt.done
			}
			due, queue := a.dueAt(tt.h, k, interval)
			if queue != tt.wantQueue {
				t.Fatalf("queue = %v, want %v", queue, tt.wantQueue)
			}
			if !queue {
				return
			}
			switch {
			case tt.wantRange:
				lo, hi := tt.last.Add(interval*9/10), tt.last.Add(interval*11/10)
				if due.Before(lo) || !due.Before(hi) {
					t.Fatalf("due %v, want in [%v, %v)", due, lo, hi)
				}
			case !due.Equal(tt.wantAt):
				t.Fatalf("due %v, want %v", due, tt.wantAt)
			}
		})
	}
}

func TestJitterSpreads(t *testing.T) {
	const interval = time.Hour
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[time.Duration]bool{}
	for shard := range int64(200) {
		j := jittered(interval, "holder", shard, last)
		if j < interval*9/10 || j >= interval*11/10 {
			t.Fatalf("shard %d: jitter %v out of ±10 %%", shard, j)
		}
		if j != jittered(interval, "holder", shard, last) {
			t.Fatal("jitter is not a function of its input")
		}
		seen[j] = true
	}
	if len(seen) < 190 {
		t.Fatalf("200 copies got only %d distinct due times", len(seen))
	}
}
