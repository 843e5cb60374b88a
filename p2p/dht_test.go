package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/pinfold/pinfold/publish"
)

// testPrefix keeps the test DHT apart from any other on the machine.
const testPrefix = "/pinfold-test"

// dhtConfig is testConfig with a DHT server on testPrefix, bootstrapped
// (DHT bootstrap only, not Config.Bootstrap) to peers.
func dhtConfig(t testing.TB, peers ...*running) Config {
	cfg := testConfig(t.TempDir())
	cfg.DHT.Mode = DHTServer
	cfg.DHT.ProtocolPrefix = testPrefix
	for _, p := range peers {
		for _, a := range p.Addrs() {
			cfg.DHT.Bootstrap = append(cfg.DHT.Bootstrap, a.String())
		}
	}
	return cfg
}

// headCID returns a CIDv1 dag-cbor sha2-256 CID, the form record values
// must name.
func headCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, mh)
}

// buildRecord signs a record for head/seq with key (which need not be the
// key the record is later filed under).
func buildRecord(t testing.TB, key crypto.PrivKey, head cid.Cid, seq uint64) publish.Record {
	t.Helper()
	rec, err := publish.BuildRecord(key, head, seq, time.Now(), publish.DefaultRecordConfig())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func clusterName(t testing.TB, key crypto.PrivKey) ipns.Name {
	t.Helper()
	name, err := publish.ClusterName(key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// dhtTrio starts three DHT servers on 127.0.0.1: a alone, b bootstrapped
// to a, c to a and b, and waits until every routing table holds both
// others.
func dhtTrio(t *testing.T) (a, b, c *running) {
	a = start(t, "a", testKey(t, 101), dhtConfig(t))
	b = start(t, "b", testKey(t, 102), dhtConfig(t, a))
	c = start(t, "c", testKey(t, 103), dhtConfig(t, a, b))
	waitFor(t, "full DHT routing tables", func() bool {
		return a.DHTPeers() == 2 && b.DHTPeers() == 2 && c.DHTPeers() == 2
	})
	return a, b, c
}

func TestDHTRecordPutGet(t *testing.T) {
	a, b, c := dhtTrio(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	key := testKey(t, 900) // the cluster key
	name := clusterName(t, key)

	if _, err := c.GetRecord(ctx, name); !errors.Is(err, ErrRecordNotFound) {
		t.Fatalf("GetRecord before any put = %v, want ErrRecordNotFound", err)
	}
	first := buildRecord(t, key, headCID(t, "head 1"), 1)
	if err := a.PutRecord(ctx, name, first.Raw); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	for _, n := range []*running{b, c} {
		got, err := n.GetRecord(ctx, name)
		if err != nil {
			t.Fatalf("GetRecord: %v", err)
		}
		rec, err := publish.ParseRecord(got, name, time.Now())
		if err != nil || rec.Seq != 1 || !rec.Head.Equals(first.Head) {
			t.Fatalf("GetRecord returned seq %d head %s (%v), want seq 1 head %s", rec.Seq, rec.Head, err, first.Head)
		}
	}

	// A newer record put from another node replaces it everywhere.
	second := buildRecord(t, key, headCID(t, "head 2"), 2)
	if err := b.PutRecord(ctx, name, second.Raw); err != nil {
		t.Fatalf("PutRecord newer: %v", err)
	}
	for _, n := range []*running{a, c} {
		got, err := n.GetRecord(ctx, name)
		if err != nil {
			t.Fatalf("GetRecord: %v", err)
		}
		if rec, err := publish.ParseRecord(got, name, time.Now()); err != nil || rec.Seq != 2 {
			t.Fatalf("GetRecord after newer put: seq %d, %v; want seq 2", rec.Seq, err)
		}
	}
	// The node that holds the newer record refuses to go back.
	if err := b.PutRecord(ctx, name, first.Raw); err == nil {
		t.Fatalf("PutRecord of an older record over a newer one succeeded")
	}
}

func TestDHTRefusesForgedRecords(t *testing.T) {
	a, b, _ := dhtTrio(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	key := testKey(t, 900)
	name := clusterName(t, key)
	// Signed by another key, filed under the cluster name.
	forged := buildRecord(t, testKey(t, 901), headCID(t, "evil"), 99)

	// Our own node checks before sending anything.
	err := a.PutRecord(ctx, name, forged.Raw)
	if !errors.Is(err, ErrRecordInvalid) || !errors.Is(err, ipns.ErrSignature) {
		t.Fatalf("PutRecord(forged) = %v, want ErrRecordInvalid wrapping ipns.ErrSignature", err)
	}
	t.Logf("PutRecord(forged): %v", err)
	if err := a.PutRecord(ctx, name, []byte("not a record")); !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("PutRecord(garbage) = %v, want ErrRecordInvalid", err)
	}

	// A peer that skips that check, speaking the DHT protocol directly:
	// the receiver acknowledges a valid record and resets the stream on a
	// forged one, and stores nothing.
	good := buildRecord(t, key, headCID(t, "head 1"), 1)
	if err := rawPutValue(ctx, a, b.ID(), name, good.Raw); err != nil {
		t.Fatalf("raw PUT_VALUE of a valid record: %v", err)
	}
	otherKey := testKey(t, 902)
	otherName := clusterName(t, otherKey)
	forgedOther := buildRecord(t, testKey(t, 903), headCID(t, "evil"), 5)
	if err := rawPutValue(ctx, a, b.ID(), otherName, forgedOther.Raw); err == nil {
		t.Fatalf("raw PUT_VALUE of a forged record was acknowledged")
	} else {
		t.Logf("raw PUT_VALUE of a forged record: %v", err)
	}
	if _, err := b.GetRecord(ctx, otherName); !errors.Is(err, ErrRecordNotFound) {
		t.Fatalf("GetRecord after a refused put = %v, want ErrRecordNotFound", err)
	}
	// The valid record, put only to b, is found from a.
	if got, err := a.GetRecord(ctx, name); err != nil || string(got) != string(good.Raw) {
		t.Fatalf("GetRecord of the valid raw put: %v", err)
	}
}

// rawPutValue sends one PUT_VALUE request from n to p over the DHT
// protocol, bypassing n's own validation, and waits for the echo that
// acknowledges it.
func rawPutValue(ctx context.Context, n *running, p peer.ID, name ipns.Name, raw []byte) error {
	key := name.RoutingKey()
	msg := &dhtpb.Message{
		Type:   dhtpb.Message_PUT_VALUE,
		Key:    key,
		Record: &recpb.Record{Key: key, Value: raw},
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	st, err := n.Host().NewStream(ctx, p, protocol.ID(testPrefix+"/kad/1.0.0"))
	if err != nil {
		return err
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if _, err := st.Write(append(binary.AppendUvarint(nil, uint64(len(data))), data...)); err != nil {
		return err
	}
	r := bufio.NewReader(st)
	size, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if size > 1<<20 {
		return fmt.Errorf("reply of %d bytes", size)
	}
	reply := make([]byte, size)
	if _, err := io.ReadFull(r, reply); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	var back dhtpb.Message
	if err := proto.Unmarshal(reply, &back); err != nil {
		return err
	}
	if back.GetType() != dhtpb.Message_PUT_VALUE || string(back.GetRecord().GetValue()) != string(raw) {
		return fmt.Errorf("unexpected reply %v", back.GetType())
	}
	return nil
}

func TestDHTDisabled(t *testing.T) {
	n := start(t, "off", testKey(t, 110), testConfig(t.TempDir()))
	ctx := context.Background()
	name := clusterName(t, testKey(t, 900))
	if n.DHTEnabled() || n.DHTPeers() != 0 {
		t.Fatalf("DHT enabled by default")
	}
	if err := n.PutRecord(ctx, name, []byte("x")); !errors.Is(err, ErrDHTDisabled) {
		t.Fatalf("PutRecord = %v, want ErrDHTDisabled", err)
	}
	if _, err := n.GetRecord(ctx, name); !errors.Is(err, ErrDHTDisabled) {
		t.Fatalf("GetRecord = %v, want ErrDHTDisabled", err)
	}
	for _, p := range n.Host().Mux().Protocols() {
		if strings.HasSuffix(string(p), "/kad/1.0.0") {
			t.Fatalf("DHT protocol %s served while off", p)
		}
	}
}

func TestDHTAlone(t *testing.T) {
	// A DHT with no peers keeps the record locally and says the put
	// reached nobody; Close stops everything it started (goleak, TestMain).
	n := start(t, "alone", testKey(t, 120), dhtConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	key := testKey(t, 900)
	name := clusterName(t, key)
	rec := buildRecord(t, key, headCID(t, "head 1"), 1)
	if err := n.PutRecord(ctx, name, rec.Raw); err == nil {
		t.Fatalf("PutRecord with no DHT peers succeeded")
	} else {
		t.Logf("PutRecord with no peers: %v", err)
	}
	got, err := n.GetRecord(ctx, name)
	if err != nil || string(got) != string(rec.Raw) {
		t.Fatalf("GetRecord of the locally kept record: %v", err)
	}
	n.stop(t)
	if err := n.PutRecord(ctx, name, rec.Raw); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutRecord after Close = %v, want ErrClosed", err)
	}
}
