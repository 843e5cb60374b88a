package trust

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// Keys in tests come from a ChaCha8 stream seeded by a fixed string, so
// every run signs the same bytes.
const keySeedPrefix = "pinfold trust test key: "

func seededReader(seed string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

var (
	keyMu    sync.Mutex
	keyCache = map[string]crypto.PrivKey{}
)

// testKey returns the key named name, the same in every run.
func testKey(t testing.TB, name string) crypto.PrivKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[name]; ok {
		return k
	}
	k, err := GenerateKey(seededReader(keySeedPrefix + name))
	if err != nil {
		t.Fatal(err)
	}
	keyCache[name] = k
	return k
}

func testID(t testing.TB, name string) peer.ID {
	t.Helper()
	id, err := PeerID(testKey(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// trustSet returns the sorted binary peer IDs of the named keys.
func trustSet(t testing.TB, names ...string) [][]byte {
	t.Helper()
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		out = append(out, []byte(testID(t, n)))
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

// baseTime is the genesis time of test chains (2023-11-14T22:13:20Z).
const baseTime = int64(1_700_000_000_000)

var (
	fakePinset     = dag.CID([]byte("pinset"))
	fakeMembers    = dag.CID([]byte("members"))
	fakeAllocation = dag.CID([]byte("allocation"))
)

// blocks is an in-memory block getter for chain tests.
type blocks map[cid.Cid][]byte

func (b blocks) get(c cid.Cid) ([]byte, error) {
	data, ok := b[c]
	if !ok {
		return nil, errNotFound{c}
	}
	return data, nil
}

type errNotFound struct{ c cid.Cid }

func (e errNotFound) Error() string { return "block " + e.c.String() + " not found" }

// spec describes a head to sign.
type spec struct {
	cluster peer.ID
	signer  crypto.PrivKey
	trust   [][]byte
	seq     int64
	time    int64
	parent  *cid.Cid
	version int64 // 0: dag.Version
}

func signHead(t testing.TB, s spec) (cid.Cid, []byte, dag.SignedHead) {
	t.Helper()
	version := s.version
	if version == 0 {
		version = dag.Version
	}
	h := dag.Head{
		Version:    version,
		Cluster:    []byte(s.cluster),
		Seq:        s.seq,
		Parent:     s.parent,
		Time:       s.time,
		Trust:      s.trust,
		Pinset:     fakePinset,
		Members:    fakeMembers,
		Allocation: fakeAllocation,
	}
	sh, err := SignHead(s.signer, h)
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedHead(sh)
	if err != nil {
		t.Fatal(err)
	}
	return dag.CID(data), data, sh
}

// testRules returns rules for cluster "cluster" with genesis trust names.
func testRules(t testing.TB, names ...string) Rules {
	t.Helper()
	ids := make([]peer.ID, len(names))
	for i, n := range names {
		ids[i] = testID(t, n)
	}
	return Rules{Cluster: testID(t, "cluster"), Trust: ids, MaxSkew: DefaultMaxSkew}
}

// testNow is a fixed clock a day after baseTime.
var testNow = time.UnixMilli(baseTime).Add(24 * time.Hour)

func testAck(t testing.TB, follower string) dag.Ack {
	return dag.Ack{
		Version: dag.Version,
		Cluster: []byte(testID(t, "cluster")),
		Peer:    []byte(testID(t, follower)),
		Head:    dag.CID([]byte("head")),
		Seq:     7,
		Shard:   3,
		Digest:  append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...),
		Bytes:   100 << 20,
		State:   dag.StateStored,
		Time:    baseTime,
	}
}

func testOffer(t testing.TB, follower string) dag.Offer {
	return dag.Offer{
		Version:  dag.Version,
		Cluster:  []byte(testID(t, "cluster")),
		Peer:     []byte(testID(t, follower)),
		Capacity: 500 << 30,
		Free:     800 << 30,
		Agent:    "pinfold/test",
		Addrs:    [][]byte{{0x04, 127, 0, 0, 1, 0x06, 0x10, 0x01}},
		Nickname: "alice",
		Domain:   "eu-west",
		Time:     baseTime,
	}
}

func signedAckBytes(t testing.TB, key crypto.PrivKey, a dag.Ack) []byte {
	t.Helper()
	sa, err := SignAck(key, a)
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedAck(sa)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func testAudit(t testing.TB, auditor, holder string) dag.Audit {
	return dag.Audit{
		Version: dag.Version,
		Cluster: []byte(testID(t, "cluster")),
		Auditor: []byte(testID(t, auditor)),
		Holder:  []byte(testID(t, holder)),
		Head:    dag.CID([]byte("head")),
		Seq:     7,
		Shard:   3,
		Digest:  append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...),
		Nonce:   bytes.Repeat([]byte{0x42}, dag.NonceLen),
		Samples: 16,
		Result:  dag.ResultPass,
		Time:    baseTime,
	}
}

func signedAuditBytes(t testing.TB, key crypto.PrivKey, a dag.Audit) []byte {
	t.Helper()
	sa, err := SignAudit(key, a)
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedAudit(sa)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func signedOfferBytes(t testing.TB, key crypto.PrivKey, o dag.Offer) []byte {
	t.Helper()
	so, err := SignOffer(key, o)
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedOffer(so)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
