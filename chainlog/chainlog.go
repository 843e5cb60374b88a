package chainlog

import (
	"context"
	"encoding/hex"
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

// SaveEvery is how often, at most, Follow writes the ledger to disk while
// heads come; it writes it too, within SaveEvery, after the last of them,
// and when it returns. The whole ledger is one record, and writing it at
// every head cost each node O(ledger) per head (38 % of the CPU of 300
// light followers while heads came). A node that stops without Follow
// returning applies the logs of the heads since the one saved again when
// it starts; the record holds the ledger's seq, and the ledger skips the
// heads up to it, so none is applied twice.
const SaveEvery = 30 * time.Second

// HeadSource is the node's view of its newest verified head.
type HeadSource interface {
	Newest() (trust.Verified, bool)
	Changed() <-chan struct{}
}

// Tracker owns a ledger fed from the chain. Safe for concurrent use.
type Tracker struct {
	d   ds.Datastore
	log *slog.Logger

	saveEvery time.Duration

	mu      sync.Mutex
	l       *ledger.Ledger
	applied cid.Cid   // newest head applied
	saved   cid.Cid   // the head of the ledger on disk
	signed  time.Time // the time that head was signed at; zero when loaded from disk
	changed chan struct{}
}

// persisted is the ledger's record on disk. Peer IDs are binary, and JSON
// strings replace bytes that are not UTF-8, so the record holds them in
// hex (format 2). Format 1 (no "format" field) held them as they were: a
// ledger it saved lost the peers of nearly every record, and is rebuilt
// from the chain instead of being loaded.
type persisted struct {
	Format int             `json:"format"`
	Head   string          `json:"head"`
	Ledger ledger.Snapshot `json:"ledger"`
}

const persistedFormat = 2

func encodeState(head cid.Cid, s ledger.Snapshot) ([]byte, error) {
	for i := range s.Holdings {
		s.Holdings[i].Peer = hex.EncodeToString([]byte(s.Holdings[i].Peer))
	}
	for i := range s.Members {
		s.Members[i].Peer = hex.EncodeToString([]byte(s.Members[i].Peer))
	}
	return json.Marshal(persisted{Format: persistedFormat, Head: head.String(), Ledger: s})
}

// errOldFormat: a record of format 1, to be rebuilt.
var errOldFormat = errors.New("saved by an earlier version, with damaged peer IDs")

func decodeState(b []byte) (cid.Cid, ledger.Snapshot, error) {
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return cid.Undef, p.Ledger, err
	}
	switch p.Format {
	case persistedFormat:
	case 0:
		return cid.Undef, p.Ledger, errOldFormat
	default:
		return cid.Undef, p.Ledger, fmt.Errorf("unknown format %d", p.Format)
	}
	head, err := cid.Decode(p.Head)
	if err != nil {
		return cid.Undef, p.Ledger, fmt.Errorf("head: %w", err)
	}
	s := p.Ledger
	for i := range s.Holdings {
		if s.Holdings[i].Peer, err = unhex(s.Holdings[i].Peer); err != nil {
			return cid.Undef, s, fmt.Errorf("holding %d: %w", i, err)
		}
	}
	for i := range s.Members {
		if s.Members[i].Peer, err = unhex(s.Members[i].Peer); err != nil {
			return cid.Undef, s, fmt.Errorf("member %d: %w", i, err)
		}
	}
	return head, s, nil
}

func unhex(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("peer: %w", err)
	}
	return string(b), nil
}

// Open loads the tracker's ledger from d (empty if none is stored).
func Open(ctx context.Context, d ds.Datastore, log *slog.Logger) (*Tracker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{d: d, log: log, l: ledger.New(), changed: make(chan struct{}), saveEvery: SaveEvery}
	b, err := d.Get(ctx, stateKey)
	if errors.Is(err, ds.ErrNotFound) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	head, snap, err := decodeState(b)
	if errors.Is(err, errOldFormat) {
		log.Warn("the ledger on disk was " + errOldFormat.Error() + "; rebuilding it from the chain's recent heads")
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	t.applied, t.saved = head, head
	t.l = ledger.Restore(snap)
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
// reading blocks through st, and saves the ledger (see SaveEvery). It
// returns when ctx ends, after saving the ledger.
func (t *Tracker) Follow(ctx context.Context, src HeadSource, st *dag.Store) error {
	defer func() {
		// ctx has ended: the last save gets a little time of its own.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := t.save(sctx); err != nil {
			t.log.Warn("save ledger", "err", err)
		}
	}()
	saveTimer := time.NewTimer(t.saveEvery)
	saveTimer.Stop()
	defer saveTimer.Stop()
	var due <-chan time.Time // set while an applied head waits to be saved
	for {
		changed := src.Changed()
		var retry <-chan time.Time
		if v, ok := src.Newest(); ok && !v.CID.Equals(t.Applied()) {
			err := t.catchUp(ctx, st, v)
			if due == nil && t.unsaved() {
				saveTimer.Reset(t.saveEvery)
				due = saveTimer.C
			}
			if err != nil && ctx.Err() == nil {
				t.log.Warn("read head logs", "head", v.CID, "err", err)
				retry = time.After(5 * time.Second) // try again on the next head, or soon
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry:
		case <-due:
			due = nil
			if err := t.save(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("save ledger", "err", err)
			}
		}
	}
}

// unsaved reports whether the ledger holds a head the disk does not.
func (t *Tracker) unsaved() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.applied.Equals(t.saved)
}

// save writes the ledger and the head it holds, unless the disk has it.
func (t *Tracker) save(ctx context.Context) error {
	t.mu.Lock()
	if t.applied.Equals(t.saved) {
		t.mu.Unlock()
		return nil
	}
	head := t.applied
	snap := t.l.Snapshot()
	t.mu.Unlock()
	b, err := encodeState(head, snap)
	if err != nil {
		return err
	}
	if err := t.d.Put(ctx, stateKey, b); err != nil {
		return fmt.Errorf("save ledger at head %s: %w", head, err)
	}
	t.mu.Lock()
	t.saved = head
	t.mu.Unlock()
	return nil
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
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
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
