package dag

import (
	_ "embed"

	"github.com/ipfs/go-cid"
)

// Format versions. Every signed record carries its version; this code
// writes Version and reads MinVersion..Version (heads, ACKs and offers of
// version 1 decode and verify exactly as before). A record with any other
// version is rejected with ErrUnknownVersion, never guessed at.
//
// Version 2 adds one thing: the "audit" kind of log entry (SignedAudit),
// which exists only from version 2 (AuditVersion). The encoding of every
// version 1 block is unchanged.
const (
	Version      = 2
	MinVersion   = 1
	AuditVersion = 2 // the first version with audit log entries
)

// schemaText is the IPLD schema of every block pinfold writes. It is the
// normative definition; docs/protocol.md explains it field by field.
// Field order here is irrelevant to the encoding: dag-cbor sorts map keys.
//
//go:embed schema.ipldsch
var schemaText []byte

// Signature is a detached ed25519 signature made by the peer whose libp2p
// peer ID (an identity multihash embedding the public key) is Signer.
type Signature struct {
	Signer []byte // binary peer ID
	Sig    []byte // 64-byte ed25519 signature
}

// Head is one curator publication: the complete cluster state at Seq.
type Head struct {
	Version    int64
	Cluster    []byte   // binary peer ID of the cluster key; its IPNS name is the cluster name
	Seq        int64    // strictly greater than the parent's
	Parent     *cid.Cid // CID of the parent SignedHead; nil at genesis
	Time       int64    // unix milliseconds, set by the signing curator
	Trust      [][]byte // curator peer IDs allowed to sign the next head; ascending bytes, unique
	Pinset     cid.Cid  // -> Pinset
	Members    cid.Cid  // -> List of MemberChunk
	Allocation cid.Cid  // -> Allocation
}

// SignedHead is the block a head CID names: the head and its signature.
type SignedHead struct {
	Head Head
	Sig  Signature
}

// Pinset ties a head to the Merkle-CRDT state it was made from.
type Pinset struct {
	CRDTHeads []cid.Cid // wire key "crdtHeads"; go-ds-crdt heads at publication; ascending bytes, unique
	Pins      int64     // number of pins in that state
	Bytes     int64     // sum of pin sizes
	Shards    cid.Cid   // -> List of ShardChunk
}

// Shard is a bounded group of pins that is allocated as a unit.
type Shard struct {
	ID      int64 // wire key "id"; ascending and unique across the list
	Bytes   int64
	Pins    int64
	ReplMin int64
	ReplMax int64
}

// Member is an admitted follower and the capacity it pledged, as signed by
// a curator (not the raw self-report of its offer).
type Member struct {
	Peer     []byte // binary peer ID; ascending and unique across the list
	Capacity int64  // pledged bytes
	Domain   string // failure-domain tag; "" for none
	Nickname string
	Admitted int64  // seq of the head that admitted it
	Offline  *int64 // seq since which it has been offline; nil while live
}

// List is a long list split into chunks so that no block exceeds MaxBlockSize
// (schema type ChunkList: "List" is a prelude type name in IPLD schemas).
// Chunks are filled in order, each but the last holding exactly the chunk
// size of its element type, so equal lists always have equal CIDs.
type List struct {
	Count  int64
	Chunks []cid.Cid // -> MemberChunk | ShardChunk | LogChunk
}

type MemberChunk struct{ Items []Member }
type ShardChunk struct{ Items []Shard }
type LogChunk struct{ Items []LogEntry }

// Allocation is the compact expression from which every peer computes the
// holders of every shard of the head: the inputs are the head's members and
// the pinset's shards, plus what is here.
type Allocation struct {
	Algorithm string // e.g. "pinfold/bounded-rendezvous"
	AlgVer    int64  // algorithm version; an old map never silently changes
	Params    AllocParams
	Overrides []Override // ascending by Shard, unique
	Log       *cid.Cid   // -> List of LogChunk: what was received since the parent; nil if nothing
}

type AllocParams struct {
	ReplMin     int64 // cluster default replication minimum
	ReplMax     int64 // cluster default replication maximum
	ShardTarget int64 // target shard size in bytes
	Epsilon     int64 // load bound, in parts per million over the mean fill
}

// Override pins a shard to given peers, or excludes peers from it.
type Override struct {
	Shard   int64
	Pin     [][]byte // peer IDs that must hold it; ascending, unique
	Exclude [][]byte // peer IDs that must not; ascending, unique
}

// LogEntry is one record of the allocation log: a keyed union, exactly one
// field set. Audit entries exist from format version 2 (AuditVersion); the
// encoding of ACK entries is the same in every version.
type LogEntry struct {
	Ack   *SignedAck
	Audit *SignedAudit
}

// Ack is a follower's commitment to hold (State "stored") or its notice of
// giving up (State "released") one shard as allocated by head Head.
type Ack struct {
	Version int64
	Cluster []byte
	Peer    []byte  // the follower; must equal the signer
	Head    cid.Cid // the head whose allocation this answers
	Seq     int64   // that head's seq
	Shard   int64
	Digest  []byte // sha2-256 multihash over the shard's pin CIDs and sizes (docs/protocol.md)
	Bytes   int64
	State   string // "stored" | "released"
	Time    int64  // unix milliseconds, follower's clock
}

type SignedAck struct {
	Ack Ack
	Sig Signature
}

// Audit is a curator's signed result of one proof-of-possession challenge
// (package audit): Auditor challenged Holder for the blocks of Samples
// sampled paths of shard Shard as listed by head Head, with Nonce, and
// the answer passed or failed. Format version 2 and later.
type Audit struct {
	Version int64
	Cluster []byte
	Auditor []byte  // the curator that ran the challenge; must equal the signer
	Holder  []byte  // the member challenged
	Head    cid.Cid // the head whose shard list and pinset the audit checked against
	Seq     int64   // that head's seq
	Shard   int64
	Digest  []byte // the shard content digest audited (as in ACKs)
	Nonce   []byte // the challenge's nonce, exactly NonceLen bytes
	Samples int64  // sampled paths checked
	Result  string // "pass" | "fail"
	Reason  string // why it failed; "" for a pass
	Time    int64  // unix milliseconds, auditor's clock
}

type SignedAudit struct {
	Audit Audit
	Sig   Signature
}

// Offer is a follower's signed announcement of what it donates.
type Offer struct {
	Version  int64
	Cluster  []byte
	Peer     []byte   // the follower; must equal the signer
	Capacity int64    // bytes pledged
	Free     int64    // free bytes on its disk
	Agent    string   // software and version
	Addrs    [][]byte // binary multiaddrs
	Nickname string
	Domain   string
	Time     int64 // unix milliseconds; later offers replace earlier ones
}

type SignedOffer struct {
	Offer Offer
	Sig   Signature
}
