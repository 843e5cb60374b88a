package publish

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	ipns_pb "github.com/ipfs/boxo/ipns/pb"
	"github.com/ipfs/boxo/util"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	basicnode "github.com/ipld/go-ipld-prime/node/basic"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// testKey returns a deterministic ed25519 key: seed byte repeated 32 times.
func testKey(tb testing.TB, seed byte) crypto.PrivKey {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	k, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func testName(tb testing.TB, k crypto.PrivKey) ipns.Name {
	tb.Helper()
	n, err := ClusterName(k.GetPublic())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// testHead returns the CIDv1 dag-cbor sha2-256 CID of some fake head n.
func testHead(tb testing.TB, n int) cid.Cid {
	tb.Helper()
	mh, err := multihash.Sum(fmt.Appendf(nil, "head %d", n), multihash.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, mh)
}

// build is BuildRecord that fails the test on error.
func build(tb testing.TB, k crypto.PrivKey, head cid.Cid, seq uint64, now time.Time, cfg RecordConfig) Record {
	tb.Helper()
	r, err := BuildRecord(k, head, seq, now, cfg)
	if err != nil {
		tb.Fatalf("BuildRecord: %v", err)
	}
	return r
}

// craft builds IPNS records field by field, signed by key, including
// records that BuildRecord would never make. Its zero-override form
// (baseCraft) reproduces BuildRecord's bytes exactly, which a test checks.
type craft struct {
	key      crypto.PrivKey
	value    []byte
	validity string
	vtype    int64
	seq      int64
	ttl      int64
	extra    map[string]int64 // additional keys in the signed Data map
	v1       bool             // add the V1 protobuf fields and SignatureV1
	v1Sig    []byte           // if non-nil, used as SignatureV1
	dropV1   string           // V1 field to leave out: value, sig1, vtype, validity, seq, ttl
	pubKey   bool             // embed the public key
}

// baseCraft is the record BuildRecord makes for testHead(1), seq 7, at t0
// with the default config.
func baseCraft(tb testing.TB, key crypto.PrivKey) craft {
	tb.Helper()
	cfg := DefaultRecordConfig()
	return craft{
		key:      key,
		value:    []byte("/ipfs/" + testHead(tb, 1).String()),
		validity: util.FormatRFC3339(t0.Add(cfg.Validity)),
		vtype:    0,
		seq:      7,
		ttl:      int64(cfg.TTL),
		v1:       true,
	}
}

// data returns the dag-cbor Data map (keys sorted by dagcbor.Encode).
func (c craft) data(tb testing.TB) []byte {
	tb.Helper()
	nb := basicnode.Prototype.Map.NewBuilder()
	ma, err := nb.BeginMap(int64(5 + len(c.extra)))
	if err != nil {
		tb.Fatal(err)
	}
	put := func(k string, v datamodel.Node) {
		if err := ma.AssembleKey().AssignString(k); err != nil {
			tb.Fatal(err)
		}
		if err := ma.AssembleValue().AssignNode(v); err != nil {
			tb.Fatal(err)
		}
	}
	put("Value", basicnode.NewBytes(c.value))
	put("Validity", basicnode.NewBytes([]byte(c.validity)))
	put("ValidityType", basicnode.NewInt(c.vtype))
	put("Sequence", basicnode.NewInt(c.seq))
	put("TTL", basicnode.NewInt(c.ttl))
	for k, v := range c.extra {
		put(k, basicnode.NewInt(v))
	}
	if err := ma.Finish(); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func (c craft) pb(tb testing.TB) *ipns_pb.IpnsRecord {
	tb.Helper()
	data := c.data(tb)
	sig2, err := c.key.Sign(append([]byte("ipns-signature:"), data...))
	if err != nil {
		tb.Fatal(err)
	}
	pb := &ipns_pb.IpnsRecord{Data: data, SignatureV2: sig2}
	if c.v1 {
		vt := ipns_pb.IpnsRecord_ValidityType(c.vtype)
		seq, ttl := uint64(c.seq), uint64(c.ttl)
		pb.Value = c.value
		pb.ValidityType = &vt
		pb.Validity = []byte(c.validity)
		pb.Sequence = &seq
		pb.Ttl = &ttl
		sig1 := c.v1Sig
		if sig1 == nil {
			signed := bytes.Join([][]byte{pb.Value, pb.Validity, fmt.Append(nil, pb.GetValidityType())}, nil)
			if sig1, err = c.key.Sign(signed); err != nil {
				tb.Fatal(err)
			}
		}
		pb.SignatureV1 = sig1
		switch c.dropV1 {
		case "":
		case "value":
			pb.Value = nil
		case "sig1":
			pb.SignatureV1 = nil
		case "vtype":
			pb.ValidityType = nil
		case "validity":
			pb.Validity = nil
		case "seq":
			pb.Sequence = nil
		case "ttl":
			pb.Ttl = nil
		default:
			tb.Fatalf("craft: unknown V1 field %q", c.dropV1)
		}
	}
	if c.pubKey {
		pk, err := crypto.MarshalPublicKey(c.key.GetPublic())
		if err != nil {
			tb.Fatal(err)
		}
		pb.PubKey = pk
	}
	return pb
}

func (c craft) marshal(tb testing.TB) []byte {
	tb.Helper()
	raw, err := proto.Marshal(c.pb(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// protoField encodes one length-delimited protobuf field.
func protoField(tb testing.TB, num protowire.Number, v []byte) []byte {
	tb.Helper()
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func marshalPB(tb testing.TB, pb *ipns_pb.IpnsRecord) []byte {
	tb.Helper()
	raw, err := proto.Marshal(pb)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}
