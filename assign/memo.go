package assign

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/dag"
)

// Memo remembers the plans of the newest heads it computed, by head CID,
// so that the parts of a daemon that need a head's plan (a follower's own
// shards, the ACK window that checks everyone's ACKs, a curator's audits)
// compute it once: a plan is a function of the head's blocks alone, and
// reading and computing it is most of what a head costs a follower (the
// shard list's decoding and allocation.Compute). Callers asking for the
// same head at once share one computation. Plans and inputs returned are
// shared: callers must not change them. Safe for concurrent use.
type Memo struct {
	n int

	mu      sync.Mutex
	entries []*memoEntry // oldest first, at most n
}

type memoEntry struct {
	c    cid.Cid
	done chan struct{} // closed when plan, in and err are set
	plan *allocation.Plan
	in   Inputs
	err  error
}

// NewMemo returns a memo of the plans of the n newest heads asked for.
func NewMemo(n int) *Memo { return &Memo{n: max(n, 1)} }

// Plan returns the plan of head h, whose CID is c: from the memo, or
// computed by Plan and remembered. A computation that fails is not
// remembered. A caller whose ctx ends while another caller computes the
// same head returns ctx's error.
func (m *Memo) Plan(ctx context.Context, st *dag.Store, c cid.Cid, h dag.Head) (*allocation.Plan, Inputs, error) {
	m.mu.Lock()
	for _, e := range m.entries {
		if e.c.Equals(c) {
			m.mu.Unlock()
			select {
			case <-e.done:
				if e.err != nil { // the computing caller's failure: try again
					return m.Plan(ctx, st, c, h)
				}
				return e.plan, e.in, nil
			case <-ctx.Done():
				return nil, Inputs{}, ctx.Err()
			}
		}
	}
	e := &memoEntry{c: c, done: make(chan struct{})}
	m.add(e)
	m.mu.Unlock()
	e.plan, e.in, e.err = Plan(ctx, st, h)
	if e.err != nil {
		m.mu.Lock()
		m.remove(e)
		m.mu.Unlock()
	}
	close(e.done)
	return e.plan, e.in, e.err
}

// Put remembers plan and in as head c's, computed by the caller (a
// curator, which builds them before it signs the head).
func (m *Memo) Put(c cid.Cid, plan *allocation.Plan, in Inputs) {
	e := &memoEntry{c: c, done: make(chan struct{}), plan: plan, in: in}
	close(e.done)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, old := range m.entries {
		if old.c.Equals(c) {
			m.remove(old)
			break
		}
	}
	m.add(e)
}

// add appends e, dropping the oldest beyond n. The caller holds m.mu.
func (m *Memo) add(e *memoEntry) {
	m.entries = append(m.entries, e)
	if len(m.entries) > m.n {
		m.entries[0] = nil
		m.entries = m.entries[1:]
	}
}

// remove drops e if it is still there. The caller holds m.mu.
func (m *Memo) remove(e *memoEntry) {
	for i, x := range m.entries {
		if x == e {
			m.entries = append(m.entries[:i], m.entries[i+1:]...)
			return
		}
	}
}
