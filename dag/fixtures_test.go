package dag

import (
	"bytes"
	"math"
	"strings"

	"github.com/ipfs/go-cid"
)

// Fixtures are fixed values: no randomness, so golden files stay stable.

// fakePeer returns the shape of a binary ed25519 peer ID (identity
// multihash of a protobuf public key, 38 bytes) filled from n.
func fakePeer(n int) []byte {
	p := []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}
	for i := range 32 {
		p = append(p, byte(n*31+i))
	}
	p[6], p[7] = byte(n>>8), byte(n)
	return p
}

func fakeCID(s string) cid.Cid { return CID([]byte(s)) }

func ptr[T any](v T) *T { return &v }

func fakeSig(signer int) Signature {
	return Signature{Signer: fakePeer(signer), Sig: bytes.Repeat([]byte{byte(signer)}, SignatureLen)}
}

func fixtureHead() Head {
	return Head{
		Version:    Version,
		Cluster:    fakePeer(100),
		Seq:        42,
		Parent:     ptr(fakeCID("parent")),
		Time:       1_700_000_000_000,
		Trust:      [][]byte{fakePeer(1), fakePeer(2), fakePeer(3)},
		Pinset:     fakeCID("pinset"),
		Members:    fakeCID("members"),
		Allocation: fakeCID("allocation"),
	}
}

func fixtureGenesis() SignedHead {
	h := fixtureHead()
	h.Seq = 0
	h.Parent = nil
	h.Trust = [][]byte{fakePeer(1)}
	return SignedHead{Head: h, Sig: fakeSig(1)}
}

func fixtureSignedHead() SignedHead { return SignedHead{Head: fixtureHead(), Sig: fakeSig(2)} }

func fixturePinset() Pinset {
	return Pinset{
		CRDTHeads: sortedCIDs(fakeCID("crdt-a"), fakeCID("crdt-b")),
		Pins:      1000,
		Bytes:     5 << 30,
		Shards:    fakeCID("shards"),
	}
}

func sortedCIDs(cs ...cid.Cid) []cid.Cid {
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if bytes.Compare(cs[j].Bytes(), cs[i].Bytes()) < 0 {
				cs[i], cs[j] = cs[j], cs[i]
			}
		}
	}
	return cs
}

func fixtureList() List {
	return List{Count: 1500, Chunks: []cid.Cid{fakeCID("chunk0"), fakeCID("chunk1")}}
}

func fixtureMember(n int) Member {
	m := Member{
		Peer:     fakePeer(n),
		Capacity: int64(n) << 30,
		Domain:   "eu-west",
		Nickname: "volunteer-" + string(rune('a'+n%26)),
		Admitted: int64(n),
	}
	if n%2 == 1 {
		m.Offline = ptr(int64(n + 10))
	}
	return m
}

func fixtureMemberChunk() MemberChunk {
	return MemberChunk{Items: []Member{fixtureMember(1), fixtureMember(2), fixtureMember(3)}}
}

func fixtureShard(id int64) Shard {
	return Shard{ID: id, Bytes: 100 << 20, Pins: 50 + id, ReplMin: 2, ReplMax: 3}
}

func fixtureShardChunk() ShardChunk {
	return ShardChunk{Items: []Shard{fixtureShard(0), fixtureShard(1), fixtureShard(7)}}
}

func fixtureAck() Ack {
	return Ack{
		Version: Version,
		Cluster: fakePeer(100),
		Peer:    fakePeer(7),
		Head:    fakeCID("head"),
		Seq:     42,
		Shard:   3,
		Digest:  append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...),
		Bytes:   100 << 20,
		State:   StateStored,
		Time:    1_700_000_001_000,
	}
}

func fixtureSignedAck() SignedAck { return SignedAck{Ack: fixtureAck(), Sig: fakeSig(7)} }

func fixtureLogChunk() LogChunk {
	a := fixtureSignedAck()
	b := fixtureSignedAck()
	b.Ack.State = StateReleased
	b.Ack.Shard = 4
	return LogChunk{Items: []LogEntry{{Ack: &a}, {Ack: &b}}}
}

func fixtureAllocation() Allocation {
	return Allocation{
		Algorithm: "pinfold/bounded-rendezvous",
		AlgVer:    1,
		Params:    AllocParams{ReplMin: 2, ReplMax: 3, ShardTarget: 1 << 30, Epsilon: 50_000},
		Overrides: []Override{
			{Shard: 1, Pin: [][]byte{fakePeer(7)}, Exclude: [][]byte{}},
			{Shard: 9, Pin: [][]byte{}, Exclude: [][]byte{fakePeer(8), fakePeer(9)}},
		},
		Log: ptr(fakeCID("log")),
	}
}

func fixtureAudit() Audit {
	return Audit{
		Version: Version,
		Cluster: fakePeer(100),
		Auditor: fakePeer(2),
		Holder:  fakePeer(7),
		Head:    fakeCID("head"),
		Seq:     42,
		Shard:   3,
		Digest:  append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...),
		Nonce:   bytes.Repeat([]byte{0x5a}, NonceLen),
		Samples: 16,
		Result:  ResultPass,
		Reason:  "",
		Time:    1_700_000_003_000,
	}
}

func fixtureSignedAudit() SignedAudit { return SignedAudit{Audit: fixtureAudit(), Sig: fakeSig(2)} }

func fixtureFailedAudit() SignedAudit {
	a := fixtureSignedAudit()
	a.Audit.Result = ResultFail
	a.Audit.Reason = "audit: block missing: path 3 depth 2"
	a.Audit.Samples = 3
	return a
}

// fixtureLogChunkV2 mixes both kinds of entry.
func fixtureLogChunkV2() LogChunk {
	a := fixtureSignedAck()
	b := fixtureSignedAudit()
	c := fixtureFailedAudit()
	return LogChunk{Items: []LogEntry{{Ack: &a}, {Audit: &b}, {Audit: &c}}}
}

// Version 1 values: the golden files of format version 1 hold these.

func v1Head(h SignedHead) SignedHead    { h.Head.Version = 1; return h }
func v1Ack(a SignedAck) SignedAck       { a.Ack.Version = 1; return a }
func v1Offer(o SignedOffer) SignedOffer { o.Offer.Version = 1; return o }

func v1LogChunk() LogChunk {
	c := fixtureLogChunk()
	for i := range c.Items {
		a := v1Ack(*c.Items[i].Ack)
		c.Items[i].Ack = &a
	}
	return c
}

func fixtureOffer() Offer {
	return Offer{
		Version:  Version,
		Cluster:  fakePeer(100),
		Peer:     fakePeer(7),
		Capacity: 500 << 30,
		Free:     800 << 30,
		Agent:    "pinfold/0.1.0",
		Addrs:    [][]byte{{0x04, 127, 0, 0, 1, 0x06, 0x10, 0x01}},
		Nickname: "alice",
		Domain:   "eu-west",
		Time:     1_700_000_002_000,
	}
}

func fixtureSignedOffer() SignedOffer { return SignedOffer{Offer: fixtureOffer(), Sig: fakeSig(7)} }

// Maximal values: every field at its size limit.

func maxPeer(n int) []byte {
	p := bytes.Repeat([]byte{0xff}, MaxPeerIDLen)
	p[0], p[1], p[2] = byte(n>>16), byte(n>>8), byte(n)
	return p
}

func maxText(n int) string { return strings.Repeat("é", n/2) }

func maxMember(n int) Member {
	return Member{
		Peer:     maxPeer(n),
		Capacity: math.MaxInt64,
		Domain:   maxText(MaxDomainLen),
		Nickname: maxText(MaxNicknameLen),
		Admitted: math.MaxInt64,
		Offline:  ptr(int64(math.MaxInt64)),
	}
}

func maxShard(id int64) Shard {
	return Shard{ID: math.MaxInt64 - ShardChunkSize + id, Bytes: math.MaxInt64, Pins: math.MaxInt64, ReplMin: math.MaxInt64, ReplMax: math.MaxInt64}
}

func maxSignedAck() SignedAck {
	return SignedAck{
		Ack: Ack{
			Version: Version,
			Cluster: maxPeer(1),
			Peer:    maxPeer(2),
			Head:    fakeCID("head"),
			Seq:     math.MaxInt64,
			Shard:   math.MaxInt64,
			Digest:  bytes.Repeat([]byte{0xff}, MaxDigestLen),
			Bytes:   math.MaxInt64,
			State:   StateReleased,
			Time:    math.MaxInt64,
		},
		Sig: Signature{Signer: maxPeer(2), Sig: bytes.Repeat([]byte{0xff}, SignatureLen)},
	}
}

func maxSignedAudit() SignedAudit {
	return SignedAudit{
		Audit: Audit{
			Version: Version,
			Cluster: maxPeer(1),
			Auditor: maxPeer(2),
			Holder:  maxPeer(3),
			Head:    fakeCID("head"),
			Seq:     math.MaxInt64,
			Shard:   math.MaxInt64,
			Digest:  bytes.Repeat([]byte{0xff}, MaxDigestLen),
			Nonce:   bytes.Repeat([]byte{0xff}, NonceLen),
			Samples: math.MaxInt64,
			Result:  ResultFail,
			Reason:  maxText(MaxReasonLen),
			Time:    math.MaxInt64,
		},
		Sig: Signature{Signer: maxPeer(2), Sig: bytes.Repeat([]byte{0xff}, SignatureLen)},
	}
}
