package records

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/trust"
)

// HeadSource is the node's view of its newest verified head
// (headsync.Sync).
type HeadSource interface {
	Newest() (trust.Verified, bool)
	Changed() <-chan struct{}
}

// Follow keeps w holding the newest heads of src, each with its plan: on
// every new newest head it adds that head and any of its ancestors the
// window lacks, up to the window's size. Blocks are read through st (a
// verified head's ancestors are verified by its chain). It returns when
// ctx ends.
func (w *Window) Follow(ctx context.Context, src HeadSource, st *dag.Store, log *slog.Logger) error {
	for {
		changed := src.Changed()
		if v, ok := src.Newest(); ok {
			if err := w.fill(ctx, st, v.CID); err != nil && ctx.Err() == nil {
				log.Warn("recent heads for acks", "head", v.CID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func (w *Window) fill(ctx context.Context, st *dag.Store, c cid.Cid) error {
	for range w.n {
		if w.Has(c) {
			return nil
		}
		w.mu.Lock()
		plans := w.plans
		w.mu.Unlock()
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		v, parent, err := view(fctx, st, c, plans)
		cancel()
		if err != nil {
			return err
		}
		w.Add(v)
		if parent == nil {
			return nil
		}
		c = *parent
	}
	return nil
}

// View reads head c through st and computes what ACKs naming it are
// checked against. It also returns the head's parent link.
func View(ctx context.Context, st *dag.Store, c cid.Cid) (HeadView, *cid.Cid, error) {
	return view(ctx, st, c, nil)
}

// view is View with the plan from plans when it is not nil.
func view(ctx context.Context, st *dag.Store, c cid.Cid, plans *assign.Memo) (HeadView, *cid.Cid, error) {
	sh, err := st.SignedHead(ctx, c)
	if err != nil {
		return HeadView{}, nil, fmt.Errorf("read head %s: %w", c, err)
	}
	var plan *allocation.Plan
	var in assign.Inputs
	if plans != nil {
		plan, in, err = plans.Plan(ctx, st, c, sh.Head)
	} else {
		plan, in, err = assign.Plan(ctx, st, sh.Head)
	}
	if err != nil {
		return HeadView{}, nil, fmt.Errorf("plan of head %s: %w", c, err)
	}
	v := HeadView{CID: c, Seq: sh.Head.Seq, Plan: plan, Members: make(map[string]bool, len(in.Members))}
	for _, m := range in.Members {
		v.Members[string(m.Peer)] = true
	}
	return v, sh.Head.Parent, nil
}
