package localcluster_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/trust"
)

// attacker is a raw libp2p host on 127.0.0.1: it speaks gossipsub by
// writing RPCs straight onto the stream (any number of messages per RPC,
// no validation, no outbound queue of its own) and serves whatever blocks
// it holds over bitswap. It follows no rule of the cluster.
type attacker struct {
	t     *testing.T
	key   crypto.PrivKey
	id    peer.ID
	host  host.Host
	bs    blockstore.Blockstore
	swap  *bitswap.Bitswap
	asked *atomic.Int64 // reads bitswap made of bs to answer wants

	mu      sync.Mutex
	seqno   uint64
	writers map[peer.ID]msgio.WriteCloser
}

// meshsub is the gossipsub protocol the attacker speaks.
const meshsub = pubsub.GossipSubID_v11

// newAttacker starts an attacker and opens a gossipsub stream to each
// target, subscribed to topics.
func newAttacker(t *testing.T, topics []string, targets ...peer.AddrInfo) *attacker {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{t: t, key: key, id: h.ID(), host: h, asked: &atomic.Int64{}, writers: map[peer.ID]msgio.WriteCloser{}}
	a.bs = countingStore{newMemBlockstore(), a.asked}
	a.swap = bitswap.New(context.Background(), bsnet.NewFromIpfsHost(h), nil, a.bs)
	// The victims open their own gossipsub streams to us: read and discard.
	for _, proto := range []protocol.ID{pubsub.GossipSubID_v13, pubsub.GossipSubID_v12, meshsub, pubsub.GossipSubID_v10} {
		h.SetStreamHandler(proto, func(s network.Stream) { _, _ = io.Copy(io.Discard, s); _ = s.Reset() })
	}
	t.Cleanup(func() {
		_ = a.swap.Close()
		_ = h.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ai := range targets {
		if err := h.Connect(ctx, ai); err != nil {
			t.Fatalf("attacker: connect to %s: %v", ai.ID, err)
		}
		s, err := h.NewStream(ctx, ai.ID, meshsub)
		if err != nil {
			t.Fatalf("attacker: open gossipsub stream to %s: %v", ai.ID, err)
		}
		w := msgio.NewVarintWriter(s)
		hello := &pb.RPC{}
		for _, topic := range topics {
			hello.Subscriptions = append(hello.Subscriptions, &pb.RPC_SubOpts{Topicid: &topic, Subscribe: ptr(true)})
		}
		a.write(w, hello)
		a.writers[ai.ID] = w
	}
	return a
}

func ptr[T any](v T) *T { return &v }

func (a *attacker) write(w msgio.WriteCloser, rpc *pb.RPC) {
	data, err := rpc.Marshal()
	if err != nil {
		a.t.Fatal(err)
	}
	if err := w.WriteMsg(data); err != nil {
		a.t.Logf("attacker: write rpc: %v", err) // a victim may have dropped us: fine
	}
}

// message builds a gossipsub message on topic, validly signed by the
// attacker's own key (so it passes gossipsub's signature check and
// reaches the topic validator).
func (a *attacker) message(topic string, data []byte) *pb.Message {
	a.mu.Lock()
	a.seqno++
	seq := a.seqno
	a.mu.Unlock()
	m := &pb.Message{From: []byte(a.id), Data: data, Seqno: binary.BigEndian.AppendUint64(nil, seq), Topic: &topic}
	b, err := m.Marshal()
	if err != nil {
		a.t.Fatal(err)
	}
	sig, err := a.key.Sign(append([]byte(pubsub.SignPrefix), b...))
	if err != nil {
		a.t.Fatal(err)
	}
	m.Signature = sig
	return m
}

// publish sends the payloads on topic to every target, all in one RPC
// per target.
func (a *attacker) publish(topic string, payloads ...[]byte) {
	rpc := &pb.RPC{}
	for _, p := range payloads {
		rpc.Publish = append(rpc.Publish, a.message(topic, p))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.writers {
		a.write(w, rpc)
	}
}

// serve makes the attacker hold blocks and answer bitswap wants for them.
func (a *attacker) serve(data ...[]byte) {
	for _, d := range data {
		if err := a.bs.Put(context.Background(), dag.NewBlock(d)); err != nil {
			a.t.Fatal(err)
		}
	}
}

// junkHead returns a head block on parent at seq that names signer as its
// signer but carries random signature bytes.
func junkHead(t *testing.T, tmpl trust.Verified, parent cid.Cid, seq int64, signer []byte) []byte {
	t.Helper()
	h := tmpl.Head
	h.Seq = seq
	h.Parent = &parent
	h.Time = time.Now().UnixMilli()
	sig := make([]byte, dag.SignatureLen)
	_, _ = rand.Read(sig)
	data, err := dag.EncodeSignedHead(dag.SignedHead{Head: h, Sig: dag.Signature{Signer: signer, Sig: sig}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// announcement encodes a head-only announcement.
func announcement(t *testing.T, head, record []byte) []byte {
	t.Helper()
	b, err := headsync.Announcement{Head: head, Record: record}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
