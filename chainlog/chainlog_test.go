package chainlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/trust"
)

// source is a HeadSource the test moves by hand.
type source struct {
	mu      sync.Mutex
	v       trust.Verified
	have    bool
	changed chan struct{}
}

func newSource() *source { return &source{changed: make(chan struct{})} }

func (s *source) Newest() (trust.Verified, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.have
}

func (s *source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *source) set(v trust.Verified) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v, s.have = v, true
	close(s.changed)
	s.changed = make(chan struct{})
}

// counting counts the writes of the ledger's record.
type counting struct {
	ds.Batching
	puts atomic.Int64
}

func (c *counting) Put(ctx context.Context, k ds.Key, v []byte) error {
	if k == stateKey {
		c.puts.Add(1)
	}
	return c.Batching.Put(ctx, k, v)
}

// chain signs heads 1..n; head i logs a stored ACK of shard i by the
// holder, and head 3 also a passed audit of shard 1.
type chain struct {
	st      *dag.Store
	curator crypto.PrivKey
	holder  crypto.PrivKey
	heads   []trust.Verified
}

func newChain(t *testing.T, n int) *chain {
	t.Helper()
	ctx := context.Background()
	c := &chain{st: dag.NewStore(blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())))}
	var err error
	if c.curator, err = trust.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if c.holder, err = trust.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	curatorID, _ := peer.IDFromPrivateKey(c.curator)
	holderID, _ := peer.IDFromPrivateKey(c.holder)
	cluster := []byte(curatorID)
	digest := append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...)
	var parent *cid.Cid
	for i := 1; i <= n; i++ {
		seq := int64(i)
		prev := dag.CID([]byte("genesis"))
		if parent != nil {
			prev = *parent
		}
		ack, err := trust.SignAck(c.holder, dag.Ack{Version: dag.Version, Cluster: cluster, Peer: []byte(holderID), Head: prev,
			Seq: seq - 1, Shard: seq, Digest: digest, Bytes: 1 << 20, State: dag.StateStored, Time: 1_700_000_000_000 + seq})
		if err != nil {
			t.Fatal(err)
		}
		log := []dag.LogEntry{{Ack: &ack}}
		if i == 3 {
			au, err := trust.SignAudit(c.curator, dag.Audit{Version: dag.Version, Cluster: cluster, Auditor: cluster, Holder: []byte(holderID),
				Head: prev, Seq: seq - 1, Shard: 1, Digest: digest, Nonce: bytes.Repeat([]byte{0x5a}, dag.NonceLen), Samples: 16,
				Result: dag.ResultPass, Time: 1_700_000_000_500})
			if err != nil {
				t.Fatal(err)
			}
			log = append(log, dag.LogEntry{Audit: &au})
		}
		h := dag.Head{Version: dag.Version, Cluster: cluster, Seq: seq, Parent: parent, Time: 1_700_000_000_000 + seq*1000, Trust: [][]byte{cluster}}
		h, _, err = c.st.BuildHead(ctx, h, dag.State{Log: log, Allocation: dag.Allocation{Algorithm: "test", AlgVer: 1,
			Params: dag.AllocParams{ReplMin: 1, ReplMax: 1, ShardTarget: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := trust.SignHead(c.curator, h)
		if err != nil {
			t.Fatal(err)
		}
		hc, err := c.st.PutSignedHead(ctx, signed)
		if err != nil {
			t.Fatal(err)
		}
		c.heads = append(c.heads, trust.Verified{SignedHead: signed, CID: hc})
		parent = &hc
	}
	return c
}

func (c *chain) holderID() string {
	id, _ := peer.IDFromPrivateKey(c.holder)
	return string(id)
}

// follow runs t.Follow on src until the returned stop is called.
func follow(t *testing.T, tr *Tracker, src *source, st *dag.Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Follow(ctx, src, st) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follow: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLedgerSavedNotAtEveryHead: while heads come the ledger is written
// at most once per SaveEvery, and when Follow returns; a tracker opened
// on it resumes at the head saved and applies each later head's log once.
func TestLedgerSavedNotAtEveryHead(t *testing.T) {
	c := newChain(t, 6)
	d := &counting{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	ctx := context.Background()
	tr, err := Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.saveEvery = time.Hour
	src := newSource()
	stop := follow(t, tr, src, c.st)
	for _, v := range c.heads[:4] {
		src.set(v)
		waitFor(t, "head applied", func() bool { return tr.Applied().Equals(v.CID) })
	}
	if n := d.puts.Load(); n != 0 {
		t.Fatalf("ledger written %d times in 4 heads, want none before SaveEvery", n)
	}
	stop()
	if n := d.puts.Load(); n != 1 {
		t.Fatalf("ledger written %d times when Follow returned, want 1", n)
	}

	// Reopened: at head 4, with the ACKs of heads 1 to 4 and the audit.
	tr2, err := Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tr2.Applied().Equals(c.heads[3].CID) {
		t.Fatalf("reopened at %s, want head 4 %s", tr2.Applied(), c.heads[3].CID)
	}
	// Heads 5 and 6 come while it follows, with a short SaveEvery: the
	// ledger is written once they are applied, without Follow returning.
	tr2.saveEvery = 10 * time.Millisecond
	src2 := newSource()
	src2.set(c.heads[5])
	stop2 := follow(t, tr2, src2, c.st)
	waitFor(t, "head 6 saved", func() bool { return !tr2.unsaved() && tr2.Applied().Equals(c.heads[5].CID) })
	if n := d.puts.Load(); n != 2 {
		t.Fatalf("ledger written %d times in all, want 2", n)
	}
	stop2()
	if n := d.puts.Load(); n != 2 {
		t.Fatalf("ledger written again (%d) with nothing new", n)
	}
	tr3, err := Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr3.Read(func(l *ledger.Ledger) {
		for shard := int64(1); shard <= 6; shard++ {
			if h := l.Holding(c.holderID(), shard); h == nil || h.State != ledger.Stored {
				t.Errorf("shard %d: holding %+v, want stored", shard, h)
			}
		}
		if m := l.Member(c.holderID()); m.Passes != 1 {
			t.Errorf("holder's passes %d, want 1 (each head's log applied once)", m.Passes)
		}
		if l.Applied() != 6 {
			t.Errorf("ledger at seq %d, want 6", l.Applied())
		}
	})
}

// TestStateFormat: the record on disk keeps binary peer IDs intact; a
// record of the first format (peers as JSON strings, which lose every
// byte that is not UTF-8) is not loaded, and the ledger is rebuilt from
// the chain; a damaged record is an error.
func TestStateFormat(t *testing.T) {
	ctx := context.Background()
	peer := string([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 0xff, 0xfe, 0x80, 0x41})
	snap := ledger.Snapshot{Applied: 7,
		Holdings: []ledger.Holding{{Peer: peer, Shard: 3, State: ledger.Stored, Digest: []byte{1, 2}, AckSeq: 6}},
		Members:  []ledger.Member{{Peer: peer, Passes: 2}}}
	head := dag.CID([]byte("head"))
	b, err := encodeState(head, ledger.Restore(snap).Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	gotHead, got, err := decodeState(b)
	if err != nil || !gotHead.Equals(head) {
		t.Fatalf("decode: %v, head %s", err, gotHead)
	}
	if got.Holdings[0].Peer != peer || got.Members[0].Peer != peer || got.Applied != 7 || got.Members[0].Passes != 2 {
		t.Fatalf("round trip: %+v, want the peer %q kept", got, peer)
	}

	for _, tc := range []struct {
		name, record string
		rebuilt      bool
	}{
		{"format 1", `{"head":"` + head.String() + `","ledger":{"applied":7,"holdings":[{"peer":"\u0000$\ufffd","shard":3}]}}`, true},
		{"unknown format", `{"format":3,"head":"` + head.String() + `","ledger":{}}`, false},
		{"bad peer", `{"format":2,"head":"` + head.String() + `","ledger":{"holdings":[{"peer":"zz","shard":1}]}}`, false},
		{"bad head", `{"format":2,"head":"nope","ledger":{}}`, false},
		{"not JSON", `{"format":2,`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dssync.MutexWrap(ds.NewMapDatastore())
			if err := d.Put(ctx, stateKey, []byte(tc.record)); err != nil {
				t.Fatal(err)
			}
			tr, err := Open(ctx, d, nil)
			if !tc.rebuilt {
				if err == nil {
					t.Fatal("a damaged record was loaded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Applied().Defined() || tr.appliedSeq() != -1 {
				t.Fatalf("format 1 loaded: at %s, seq %d", tr.Applied(), tr.appliedSeq())
			}
			// Following the chain rebuilds it.
			c := newChain(t, 3)
			src := newSource()
			src.set(c.heads[2])
			stop := follow(t, tr, src, c.st)
			waitFor(t, "head 3 applied", func() bool { return tr.Applied().Equals(c.heads[2].CID) })
			stop()
			tr.Read(func(l *ledger.Ledger) {
				if h := l.Holding(c.holderID(), 2); h == nil || l.Member(c.holderID()).Passes != 1 {
					t.Errorf("rebuilt ledger: holding %+v, member %+v", h, l.Member(c.holderID()))
				}
			})
		})
	}
}
