package chainlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/trust"
)

// MaxWalk bounds the heads read back from a new head to the newest one
// applied. A node that fell further behind starts its ledger again from
// the new head's recent past: what it misses can only delay a release,
// never cause one.
const MaxWalk = 4096

var stateKey = ds.NewKey("/pinfold/chainlog/state")

// HeadSource is the node's view of its newest verified head.
type HeadSource interface {
	Newest() (trust.Verified, bool)
	Changed() <-chan struct{}
}

// Tracker owns a ledger fed from the chain. Safe for concurrent use.
type Tracker struct {
	d   ds.Datastore
	log *slog.Logger

	mu      sync.Mutex
	l       *ledger.Ledger
	applied cid.Cid   // newest head applied
	signed  time.Time // the time that head was signed at; zero when loaded from disk
	changed chan struct{}
}

type persisted struct {
	Head   string          `json:"head"`
	Ledger ledger.Snapshot `json:"ledger"`
}

// Open loads the tracker's ledger from d (empty if none is stored).
func Open(ctx context.Context, d ds.Datastore, log *slog.Logger) (*Tracker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{d: d, log: log, l: ledger.New(), changed: make(chan struct{})}
	b, err := d.Get(ctx, stateKey)
	if errors.Is(err, ds.ErrNotFound) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	if t.applied, err = cid.Decode(p.Head); err != nil {
		return nil, fmt.Errorf("load ledger: head: %w", err)
	}
	t.l = ledger.Restore(p.Ledger)
	return t, nil
}

// Read calls f with the ledger, which f must not keep or change.
func (t *Tracker) Read(f func(l *ledger.Ledger)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t.l)
}

// Changed returns a channel closed at the next change of the ledger.
func (t *Tracker) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Applied returns the newest head whose log is in the ledger.
func (t *Tracker) Applied() cid.Cid {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.applied
}

// AppliedSigned returns the time the newest head whose log is in the
// ledger was signed at (its curator's clock), zero before this process
// applied one.
func (t *Tracker) AppliedSigned() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.signed
}

// Follow applies the log of every head src verifies, in chain order,
// reading blocks through st. It returns when ctx ends.
func (t *Tracker) Follow(ctx context.Context, src HeadSource, st *dag.Store) error {
	for {
		changed := src.Changed()
		if v, ok := src.Newest(); ok && !v.CID.Equals(t.Applied()) {
			if err := t.catchUp(ctx, st, v); err != nil && ctx.Err() == nil {
				t.log.Warn("read head logs", "head", v.CID, "err", err)
				select { // try again on the next head, or soon
				case <-ctx.Done():
					return nil
				case <-changed:
				case <-time.After(5 * time.Second):
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

type headLog struct {
	seq int64
	log *cid.Cid
}

func (t *Tracker) catchUp(ctx context.Context, st *dag.Store, v trust.Verified) error {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	applied, appliedSeq := t.Applied(), t.appliedSeq()
	// Walk back to the newest head applied, collecting each head's log.
	var todo []headLog
	c, h := v.CID, v.Head
	for range MaxWalk {
		if c.Equals(applied) || h.Seq <= appliedSeq {
			break
		}
		a, err := st.Allocation(fctx, h.Allocation)
		if err != nil {
			return fmt.Errorf("read allocation of head %s: %w", c, err)
		}
		todo = append(todo, headLog{seq: h.Seq, log: a.Log})
		if h.Parent == nil {
			break
		}
		c = *h.Parent
		sh, err := st.SignedHead(fctx, c)
		if err != nil {
			return fmt.Errorf("read head %s: %w", c, err)
		}
		h = sh.Head
	}
	slices.Reverse(todo)
	for _, hl := range todo {
		var entries []ledger.Entry
		if hl.log != nil {
			for e, err := range st.Log(fctx, *hl.log) {
				if err != nil {
					return fmt.Errorf("read log of head seq %d: %w", hl.seq, err)
				}
				if le, ok := Entry(e); ok {
					entries = append(entries, le)
				}
			}
		}
		t.mu.Lock()
		t.l.Apply(hl.seq, entries)
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.applied, t.signed = v.CID, time.UnixMilli(v.Head.Time)
	if t.l.Applied() < v.Head.Seq {
		t.l.Apply(v.Head.Seq, nil)
	}
	snap := persisted{Head: v.CID.String(), Ledger: t.l.Snapshot()}
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	b, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	if err := t.d.Put(ctx, stateKey, b); err != nil {
		return fmt.Errorf("save ledger: %w", err)
	}
	return nil
}

func (t *Tracker) appliedSeq() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.l.Applied()
}

// Entry converts a log entry of a head into the ledger's form.
func Entry(e dag.LogEntry) (ledger.Entry, bool) {
	if e.Ack != nil {
		a := e.Ack.Ack
		return ledger.Entry{Ack: &ledger.Ack{Peer: string(a.Peer), Shard: a.Shard, State: a.State,
			Digest: a.Digest, Bytes: a.Bytes, Seq: a.Seq, Time: a.Time}}, true
	}
	if e.Audit != nil {
		a := e.Audit.Audit
		return ledger.Entry{Audit: &ledger.Audit{Auditor: string(a.Auditor), Holder: string(a.Holder), Shard: a.Shard,
			Digest: a.Digest, Result: a.Result, Reason: a.Reason, Time: a.Time}}, true
	}
	return ledger.Entry{}, false
}
