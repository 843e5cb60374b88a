package curator

import (
	"container/heap"
	"time"
)

// auditQueue orders copies by the time their next audit is due, so that
// the audit loop looks at the copies that are due, not at every holding
// of the ledger at every tick. It is rebuilt from the ledger when a head
// changes the ledger or the plan (once a head, O(holdings)); between
// heads a tick costs O(due · log n).
//
// Entries are hints: the loop computes a popped copy's due time again
// from the ledger and the audits in flight, and queues it again if it is
// not due yet. A key may be queued twice (harmless: the second pop finds
// it not due, or already running). Not safe for concurrent use: the audit
// loop owns it.
type auditQueue struct {
	h dueHeap
}

// queued is one copy and when it is due, in Unix nanoseconds.
type queued struct {
	k   auditKey
	due int64
}

type dueHeap []queued

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(queued)) }
func (h *dueHeap) Pop() any {
	old := *h
	n := len(old) - 1
	x := old[n]
	old[n] = queued{}
	*h = old[:n]
	return x
}

// push queues k at due.
func (q *auditQueue) push(k auditKey, due time.Time) {
	heap.Push(&q.h, queued{k: k, due: due.UnixNano()})
}

// popDue removes and returns the earliest copy if it is due at now.
func (q *auditQueue) popDue(now time.Time) (auditKey, bool) {
	if len(q.h) == 0 || q.h[0].due > now.UnixNano() {
		return auditKey{}, false
	}
	return heap.Pop(&q.h).(queued).k, true
}

// reset empties the queue, keeping its storage.
func (q *auditQueue) reset() { clear(q.h); q.h = q.h[:0] }

// Len is the number of entries queued.
func (q *auditQueue) Len() int { return len(q.h) }
