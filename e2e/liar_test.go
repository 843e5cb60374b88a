package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/audit"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/trust"
)

// liar is a member that pledges 64 TiB, stores nothing, and sends
// "stored" ACKs with the digests honest holders send (anyone can compute
// them). It answers audits from an empty block store.
type liar struct {
	t       *testing.T
	key     crypto.PrivKey
	id      peer.ID
	cluster configs.Cluster
	node    *p2p.Node
	offers  *p2p.Topic
	acks    *p2p.Topic

	mu      sync.Mutex
	digests map[int64][]byte // learnt from honest ACKs
	acked   map[string]bool  // "head/shard" already ACKed
	first   int64            // seq of the head its first ACK named; -1 before
}

func startLiar(t *testing.T, ctx context.Context, cluster configs.Cluster, curatorAddrs []string) *liar {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Bootstrap = curatorAddrs
	cfg.Blockstore = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	n, err := p2p.New(key, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &liar{t: t, key: key, cluster: cluster, node: n, digests: map[int64][]byte{}, acked: map[string]bool{}, first: -1}
	l.id, _ = peer.IDFromPrivateKey(key)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); n.Close() })
	wg.Add(1)
	go func() { defer wg.Done(); _ = n.Run(rctx) }() // ends at cleanup
	clusterID, err := peer.Decode(cluster.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Audits are answered, from an empty store: every path is missing.
	srv, err := audit.Serve(n.Host(), cluster.ID, clusterID, cfg.Blockstore, func(peer.ID) bool { return true }, audit.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pass := func(context.Context, *pubsub.Message) error { return nil }
	if l.offers, err = n.JoinTopic(cluster.Topics.Offers, pass); err != nil {
		t.Fatal(err)
	}
	if l.acks, err = n.JoinTopic(cluster.Topics.Acks, pass, p2p.WithMaxSize(records.MaxBatchSize)); err != nil {
		t.Fatal(err)
	}
	sub, err := l.acks.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { // learns digests from honest ACKs; ends at cleanup
		defer wg.Done()
		defer sub.Close()
		for {
			m, err := sub.Next(rctx)
			if err != nil {
				return
			}
			raws, err := records.DecodeBatch(m.Data)
			if err != nil {
				continue
			}
			for _, raw := range raws {
				if sa, err := dag.DecodeSignedAck(raw); err == nil && sa.Ack.State == "stored" {
					l.mu.Lock()
					l.digests[sa.Ack.Shard] = sa.Ack.Digest
					l.mu.Unlock()
				}
			}
		}
	}()
	return l
}

func (l *liar) offer(ctx context.Context) error {
	o := dag.Offer{Version: dag.Version, Cluster: mustPeer(l.t, l.cluster.ID), Peer: []byte(l.id), Capacity: 1 << 46, Free: 1 << 47, // 64 TiB: under the default maximum pledge, capped by probation
		Agent: "liar", Nickname: "liar-" + l.id.String()[len(l.id.String())-4:], Time: time.Now().UnixMilli()}
	so, err := trust.SignOffer(l.key, o)
	if err != nil {
		return err
	}
	data, err := dag.EncodeSignedOffer(so)
	if err != nil {
		return err
	}
	return l.offers.Publish(ctx, data)
}

// ackAssigned sends a stored ACK, naming head, of every shard the
// curator's newest plan gives the liar and whose digest it has learnt.
func (l *liar) ackAssigned(ctx context.Context, head cid.Cid, seq int64, shards []liarShard) error {
	var raws [][]byte
	l.mu.Lock()
	for _, s := range shards {
		d, ok := l.digests[s.ID]
		key := fmt.Sprintf("%s/%d", head, s.ID)
		if !ok || l.acked[key] || !s.assignedTo(l.id.String()) {
			continue
		}
		a := dag.Ack{Version: dag.Version, Cluster: mustPeer(l.t, l.cluster.ID), Peer: []byte(l.id), Head: head, Seq: seq,
			Shard: s.ID, Digest: d, Bytes: s.Bytes, State: "stored", Time: time.Now().UnixMilli()}
		sa, err := trust.SignAck(l.key, a)
		if err != nil {
			l.mu.Unlock()
			return err
		}
		raw, err := dag.EncodeSignedAck(sa)
		if err != nil {
			l.mu.Unlock()
			return err
		}
		raws = append(raws, raw)
		l.acked[key] = true
		if l.first < 0 {
			l.first = seq
		}
	}
	l.mu.Unlock()
	if len(raws) == 0 {
		return nil
	}
	data, err := records.EncodeBatch(raws)
	if err != nil {
		return err
	}
	return l.acks.Publish(ctx, data)
}

func mustPeer(t *testing.T, s string) []byte {
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(id)
}

// liarShard is the part of `curate shards ls --json` this test reads.
type liarShard struct {
	ID      int64  `json:"id"`
	Bytes   int64  `json:"bytes"`
	Max     int    `json:"max"`
	Proven  int    `json:"proven"`
	Status  string `json:"status"`
	Holders []struct {
		Peer     string `json:"peer"`
		Assigned bool   `json:"assigned"`
		State    string `json:"state"`
		Proven   bool   `json:"proven"`
	} `json:"holders"`
}

func (s liarShard) assignedTo(p string) bool {
	for _, h := range s.Holders {
		if h.Peer == p && h.Assigned {
			return true
		}
	}
	return false
}

type liarMember struct {
	Peer        string `json:"peer"`
	Standing    string `json:"standing"`
	StandingWhy string `json:"standing_why"`
}

// TestLiarsCannotCostACopy runs the real curate and follow binaries: a
// curator, two honest followers holding every shard (replication 2), and
// two liars pledging 64 TiB each that ACK without storing. No honest
// copy is ever released, no liar copy ever counts as held, both liars are
// marked failing within a few heads of their first ACK, and every shard
// ends at its target with the honest holders.
func TestLiarsCannotCostACopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// 6 pins of 1 MiB of random bytes, in 3 shards of replication 2.
	dir, home, root, cfgPath, _ := auditedCluster(t, "liars", 6, 1<<20, "2MiB", 2,
		map[string]any{"interval": "3s", "samples": 2, "timeout": "2s", "grace": "4s"})
	for _, name := range []string{"f1", "f2"} {
		run(t, "follow", "--root", root, name, "init", cfgPath, "--storage", "64MiB", "--listen", "/ip4/127.0.0.1/tcp/0")
		start(t, filepath.Join(dir, name+".log"), "follow", "--root", root, name, "run")
	}
	shardsNow := func() []liarShard {
		out, err := tryRun("curate", "--home", home, "shards", "ls", "--json")
		if err != nil {
			return nil
		}
		var ss []liarShard
		if json.Unmarshal([]byte(out), &ss) != nil {
			return nil
		}
		return ss
	}
	allProven := func(ss []liarShard) bool {
		for _, s := range ss {
			if s.Proven < s.Max || s.Status != "at-target" {
				return false
			}
		}
		return len(ss) > 0
	}
	waitFor(t, 2*time.Minute, "every shard proven at its target by the honest followers", func() bool { return allProven(shardsNow()) })
	stored := map[string]int{}
	digests := map[int64][]byte{} // what the liars claim to hold
	for _, name := range []string{"f1", "f2"} {
		rows, err := followerShardsAPI(root, name)
		if err != nil {
			t.Fatal(err)
		}
		stored[name] = len(rows)
		for _, r := range rows {
			if len(r.Digest) > 0 {
				digests[r.ID] = r.Digest
			}
		}
	}
	if len(digests) == 0 {
		t.Fatal("the honest followers' status shows no digest of what they store")
	}
	t.Logf("honest followers hold %v shards", stored)

	var cluster configs.Cluster
	if err := configs.Load(cfgPath, &cluster); err != nil {
		t.Fatal(err)
	}
	cs, err := curStatus(home)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, a := range cs.Addrs {
		addrs = append(addrs, a+"/p2p/"+mustCuratorPeer(t, home))
	}
	liars := []*liar{startLiar(t, ctx, cluster, addrs), startLiar(t, ctx, cluster, addrs)}
	// A shard's digest is computed from the pinset, so anyone can produce
	// it; the liars start out knowing it. (Learning it from honest ACKs
	// alone left them nothing to lie with when every honest ACK had been
	// recorded, and so sent, before they joined.)
	for _, l := range liars {
		l.mu.Lock()
		maps.Copy(l.digests, digests)
		l.mu.Unlock()
	}
	liarIDs := map[string]bool{}
	for _, l := range liars {
		liarIDs[l.id.String()] = true
	}

	failing := map[string]int64{} // liar -> head seq when seen failing
	deadline := time.Now().Add(2 * time.Minute)
	for len(failing) < len(liars) {
		if time.Now().After(deadline) {
			t.Fatalf("liars not all marked failing after 2 minutes: %v", failing)
		}
		cs, err := curStatus(home)
		if err != nil || cs.Head == nil {
			continue
		}
		ss := shardsNow()
		// The curator never counts a liar's copy as held.
		for _, s := range ss {
			for _, h := range s.Holders {
				if liarIDs[h.Peer] && h.Proven {
					t.Fatalf("shard %d: the liar %s counts as a proven holder", s.ID, h.Peer)
				}
			}
		}
		// No honest copy is released.
		for _, name := range []string{"f1", "f2"} {
			if rows, err := followerShardsAPI(root, name); err == nil && len(rows) < stored[name] {
				t.Fatalf("%s released a copy: holds %d shards, had %d", name, len(rows), stored[name])
			}
		}
		head, err := cid.Decode(cs.Head.CID)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range liars {
			if err := l.offer(ctx); err != nil {
				t.Logf("liar offer: %v", err)
			}
			if err := l.ackAssigned(ctx, head, cs.Head.Seq, ss); err != nil {
				t.Logf("liar ack: %v", err)
			}
		}
		out, err := tryRun("curate", "--home", home, "members", "ls", "--json")
		if err != nil {
			continue
		}
		var ms []liarMember
		if json.Unmarshal([]byte(out), &ms) != nil {
			continue
		}
		for _, m := range ms {
			if liarIDs[m.Peer] && (m.Standing == "failing" || m.Standing == "expelled") {
				if _, seen := failing[m.Peer]; !seen {
					failing[m.Peer] = cs.Head.Seq
					t.Logf("liar %s %s at head seq %d: %s", m.Peer, m.Standing, cs.Head.Seq, m.StandingWhy)
				}
			}
		}
		time.Sleep(200 * time.Millisecond) // pace the liars' traffic
	}
	for _, l := range liars {
		l.mu.Lock()
		first := l.first
		l.mu.Unlock()
		if first < 0 {
			t.Fatalf("liar %s never got a shard to lie about", l.id)
		}
		heads := failing[l.id.String()] - first
		t.Logf("liar %s: first ACK named head seq %d, failing at seq %d: %d heads", l.id, first, failing[l.id.String()], heads)
		if heads > 40 {
			t.Errorf("liar %s took %d heads to be marked failing, bound 40", l.id, heads)
		}
	}
	waitFor(t, 2*time.Minute, "every shard proven at its target again, with honest holders only", func() bool {
		ss := shardsNow()
		for _, s := range ss {
			for _, h := range s.Holders {
				if liarIDs[h.Peer] && h.Assigned {
					return false
				}
			}
		}
		return allProven(ss)
	})
	for _, name := range []string{"f1", "f2"} {
		rows, err := followerShardsAPI(root, name)
		if err != nil || len(rows) < stored[name] {
			t.Fatalf("%s holds %d shards at the end, had %d (%v)", name, len(rows), stored[name], err)
		}
	}
}

// editJSON rewrites a JSON file through f.
func editJSON(t *testing.T, path string, f func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err = json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustCuratorPeer(t *testing.T, home string) string {
	t.Helper()
	out, err := tryRun("curate", "--home", home, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Peer string `json:"peer"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	return s.Peer
}
