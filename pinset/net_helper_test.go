package pinset

// Test-only network plumbing: real libp2p hosts on 127.0.0.1, gossipsub,
// boxo bitswap and badger4 in temporary folders. The p2p package will
// replace this once it exists.

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	badger4 "github.com/ipfs/go-ds-badger4"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

const testTopic = "pinfold/test/pinset"

// trustSet is a mutable set of trusted peers, safe for concurrent use.
type trustSet struct {
	mu    sync.RWMutex
	peers map[peer.ID]bool
}

func newTrustSet(ids ...peer.ID) *trustSet {
	ts := &trustSet{peers: map[peer.ID]bool{}}
	for _, id := range ids {
		ts.peers[id] = true
	}
	return ts
}

func (ts *trustSet) has(id peer.ID) bool {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.peers[id]
}

type nodeOpts struct {
	writer      bool
	trusted     *trustSet
	noValidator bool // join the topic without the validator (tests the broadcaster's own check)
	cfg         func(*Config)
}

// node is one replica with its own host, pubsub, bitswap and badger.
type node struct {
	t      testing.TB
	key    crypto.PrivKey
	dir    string
	h      host.Host
	ps     *pubsub.PubSub
	store  *badger4.Datastore
	bswap  *bitswap.Bitswap
	val    *Validator
	topic  *pubsub.Topic
	set    *Set
	cancel context.CancelFunc
	once   sync.Once
}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func peerOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startNode starts a replica whose data lives in dir. It is stopped at
// test cleanup if the test does not stop it first.
func startNode(t testing.TB, dir string, key crypto.PrivKey, o nodeOpts) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{t: t, key: key, dir: dir, cancel: cancel}
	t.Cleanup(n.stop)
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		t.Fatalf("libp2p: %v", err)
	}
	n.h = h
	n.ps, err = pubsub.NewGossipSub(ctx, h) // StrictSign by default
	if err != nil {
		t.Fatalf("gossipsub: %v", err)
	}
	n.store = openBadger(t, dir)
	bs := blockstore.NewBlockstore(namespace.Wrap(n.store, ds.NewKey("/blocks")))
	n.bswap = bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bs)
	dag := merkledag.NewDAGService(blockservice.New(bs, n.bswap))

	cfg := testConfig(o.writer)
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	n.val = NewValidator(cfg, o.trusted.has)
	if o.noValidator {
		n.topic, err = n.ps.Join(testTopic)
	} else {
		n.topic, err = JoinTopic(n.ps, testTopic, n.val)
	}
	if err != nil {
		t.Fatal(err)
	}
	n.set, err = Open(ctx, cfg, Deps{
		Datastore: n.store,
		DAG:       dag,
		Topic:     n.topic,
		Trusted:   o.trusted.has,
		Logger:    testLogger(t).With("node", h.ID().ShortString()),
	})
	if err != nil {
		t.Fatalf("open pinset: %v", err)
	}
	return n
}

func (n *node) id() peer.ID { return n.h.ID() }

// stop closes everything in dependency order: the Set first, then what it
// runs on.
func (n *node) stop() {
	n.once.Do(func() {
		if n.set != nil {
			if err := n.set.Close(); err != nil {
				n.t.Errorf("close set: %v", err)
			}
		}
		if n.topic != nil {
			_ = n.topic.Close()
		}
		if n.bswap != nil {
			_ = n.bswap.Close()
		}
		n.cancel()
		if n.h != nil {
			_ = n.h.Close()
		}
		if n.store != nil {
			if err := n.store.Close(); err != nil {
				n.t.Errorf("close badger: %v", err)
			}
		}
	})
}

// blocksReceived is how many blocks this node's bitswap received from
// the network since it started.
func (n *node) blocksReceived() uint64 {
	st, err := n.bswap.Stat()
	if err != nil {
		n.t.Fatal(err)
	}
	return st.BlocksReceived
}

// connectAll connects every pair and waits until each node sees every
// other in the topic.
func connectAll(t testing.TB, nodes ...*node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.id(), Addrs: b.h.Addrs()}); err != nil {
				t.Fatalf("connect: %v", err)
			}
		}
	}
	eventually(t, 10*time.Second, "topic peers", func() (bool, error) {
		for _, a := range nodes {
			ps := a.topic.ListPeers()
			for _, b := range nodes {
				if b != a && !slices.Contains(ps, b.id()) {
					return false, nil
				}
			}
		}
		return true, nil
	})
}
