package dag

import (
	"bytes"
	"errors"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/node/bindnode"
	"github.com/ipld/go-ipld-prime/schema"
	"github.com/multiformats/go-multihash"
)

// Errors returned by decoding, encoding and the store. They are wrapped with
// the block type, its CID and the offending field; test with errors.Is.
var (
	// ErrMalformed: the bytes are not a valid block of the expected type
	// (not canonical dag-cbor, wrong shape, a value out of its domain).
	ErrMalformed = errors.New("dag: malformed block")
	// ErrTooLarge: a block, field, list or walk exceeds its limit.
	ErrTooLarge = errors.New("dag: over limit")
	// ErrUnknownVersion: a versioned record carries a version outside
	// MinVersion..Version (AuditVersion..Version for audits). The message
	// names the version found.
	ErrUnknownVersion = errors.New("dag: unknown format version")
)

// Codec and hash of every pinfold block: CIDv1, dag-cbor, sha2-256.
const (
	CodecDagCBOR = 0x71
	hashCode     = multihash.SHA2_256
	hashLen      = 32
)

// cidPrefix is the prefix of every CID pinfold computes for its own blocks.
var cidPrefix = cid.Prefix{
	Version:  1,
	Codec:    CodecDagCBOR,
	MhType:   hashCode,
	MhLength: hashLen,
}

// CID returns the CID of block bytes: CIDv1, dag-cbor, sha2-256.
func CID(data []byte) cid.Cid {
	c, err := cidPrefix.Sum(data)
	if err != nil {
		// sha2-256 over a byte slice cannot fail.
		panic(fmt.Sprintf("dag: sha2-256: %v", err))
	}
	return c
}

// IsBlockCID reports whether c has the prefix of a pinfold block
// (CIDv1, dag-cbor, sha2-256 with a 32-byte digest).
func IsBlockCID(c cid.Cid) bool {
	if !c.Defined() || c.Version() != 1 || c.Type() != CodecDagCBOR {
		return false
	}
	p := c.Prefix()
	return p.MhType == hashCode && p.MhLength == hashLen
}

// Domain-separation prefixes of the bytes a signature covers. The signed
// bytes are prefix || dagcbor(inner record); see SigningBytes functions.
const (
	HeadDomain  = "pinfold/v1/head\n"
	AckDomain   = "pinfold/v1/ack\n"
	OfferDomain = "pinfold/v1/offer\n"
	// AuditDomain is new in format version 2. Heads, ACKs and offers keep
	// their v1 domains in every version: their version field is inside the
	// signed bytes already.
	AuditDomain = "pinfold/v2/audit\n"
)

// typeSystem is the compiled schema. It is loaded once from the embedded
// text and never modified.
var typeSystem = loadSchema()

func loadSchema() *schema.TypeSystem {
	ts, err := ipld.LoadSchemaBytes(schemaText)
	if err != nil {
		// The schema is compiled into the binary; failing here is a build
		// defect that every test catches, not an input error.
		panic(fmt.Sprintf("dag: embedded schema: %v", err))
	}
	return ts
}

// blockType describes how one Go type is bound to its schema type, how it is
// checked, and how it is named in errors.
type blockType[T any] struct {
	name  string // human name in errors: "head", "member chunk"
	typ   schema.Type
	proto datamodel.NodePrototype // representation-level prototype
	check func(*T) error          // semantic checks after a structural decode
	// version, when set, extracts the format version from a permissively
	// decoded node so a block of another version is reported as
	// ErrUnknownVersion rather than as malformed.
	version func(datamodel.Node) (int64, bool)
	// checkVersion accepts the versions the type exists in.
	checkVersion func(int64) error
}

func newBlockType[T any](name, schemaName string, check func(*T) error, version func(datamodel.Node) (int64, bool)) *blockType[T] {
	typ := typeSystem.TypeByName(schemaName)
	if typ == nil {
		panic("dag: schema has no type " + schemaName)
	}
	proto := bindnode.Prototype((*T)(nil), typ)
	return &blockType[T]{name: name, typ: typ, proto: proto.Representation(), check: check, version: version, checkVersion: checkVersion}
}

// since sets the first version a block type exists in.
func (bt *blockType[T]) since(check func(int64) error) *blockType[T] {
	bt.checkVersion = check
	return bt
}

// Limits of the decoder itself, independent of the schema: no pinfold block
// nests deeper than 5 containers; the budget (in go-ipld-prime's units,
// roughly bytes plus a few per entry) is generous for any valid block of at
// most MaxBlockSize and stops length headers that claim more than the block
// can hold.
const (
	maxDepth         = 8
	allocationBudget = 4 * MaxBlockSize
	maxPrealloc      = 256
)

var decodeOptions = dagcbor.DecodeOptions{
	AllowLinks:            true,
	MaxDepth:              maxDepth,
	AllocationBudget:      allocationBudget,
	MaxCollectionPrealloc: maxPrealloc,
}

var encodeOptions = dagcbor.EncodeOptions{
	AllowLinks:  true,
	MapSortMode: codec.MapSortMode_RFC7049,
}

// encode checks v and returns its canonical dag-cbor bytes.
func (bt *blockType[T]) encode(v *T) ([]byte, error) {
	if err := bt.check(v); err != nil {
		return nil, fmt.Errorf("encode %s: %w", bt.name, err)
	}
	b, err := bt.encodeUnchecked(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", bt.name, err)
	}
	if len(b) > MaxBlockSize {
		return nil, fmt.Errorf("encode %s: %w: %d bytes, limit %d", bt.name, ErrTooLarge, len(b), MaxBlockSize)
	}
	return b, nil
}

func (bt *blockType[T]) encodeUnchecked(v *T) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: cannot encode: %v", ErrMalformed, r)
		}
	}()
	var buf bytes.Buffer
	n := bindnode.Wrap(v, bt.typ).Representation()
	if err := encodeOptions.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return buf.Bytes(), nil
}

// decode strictly decodes data as a block of this type. c names the block
// in errors; if undefined it is computed from data (only on error).
func (bt *blockType[T]) decode(data []byte, c cid.Cid) (*T, error) {
	v, err := bt.decodeRaw(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", bt.name, blockName(data, c), err)
	}
	return v, nil
}

// blockName names a block in errors: by its CID, computed if c is
// undefined, or by its size if it is too large to be a block at all (no
// point hashing megabytes of junk to name it).
func blockName(data []byte, c cid.Cid) string {
	switch {
	case c.Defined():
		return c.String()
	case len(data) > MaxBlockSize:
		return fmt.Sprintf("(%d bytes)", len(data))
	default:
		return CID(data).String()
	}
}

func (bt *blockType[T]) decodeRaw(data []byte) (v *T, err error) {
	if len(data) > MaxBlockSize {
		return nil, fmt.Errorf("%w: block is %d bytes, limit %d", ErrTooLarge, len(data), MaxBlockSize)
	}
	v, err = bt.decodeStructural(data)
	if err != nil {
		if verr := bt.unknownVersion(data); verr != nil {
			return nil, verr
		}
		return nil, err
	}
	if err := bt.check(v); err != nil {
		return nil, err
	}
	enc, err := bt.encodeUnchecked(v)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(enc, data) {
		return nil, fmt.Errorf("%w: not in canonical dag-cbor form", ErrMalformed)
	}
	return v, nil
}

func (bt *blockType[T]) decodeStructural(data []byte) (v *T, err error) {
	// go-ipld-prime and bindnode are not written to be panic-free on every
	// input; a panic there is a malformed block to us, never a crash.
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	nb := bt.proto.NewBuilder()
	if err := decodeOptions.Decode(nb, bytes.NewReader(data)); err != nil {
		if errors.Is(err, dagcbor.ErrAllocationBudgetExceeded) {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	p, ok := bindnode.Unwrap(nb.Build()).(*T)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected node type", ErrMalformed)
	}
	return p, nil
}

// unknownVersion decodes data without a schema (same limits) and reports
// ErrUnknownVersion if it carries a version the type does not exist in. Used only
// after a structural decode failed: a block of a future version may have
// fields this version does not know.
func (bt *blockType[T]) unknownVersion(data []byte) (err error) {
	if bt.version == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = nil
		}
	}()
	nb := basicnode.Prototype.Any.NewBuilder()
	if decodeOptions.Decode(nb, bytes.NewReader(data)) != nil {
		return nil
	}
	ver, ok := bt.version(nb.Build())
	if !ok {
		return nil
	}
	return bt.checkVersion(ver)
}

func versionError(v int64) error {
	return fmt.Errorf("%w %d (this program reads versions %d to %d)", ErrUnknownVersion, v, MinVersion, Version)
}

// versionAt returns a function that reads the integer at a path of map keys.
func versionAt(path ...string) func(datamodel.Node) (int64, bool) {
	return func(n datamodel.Node) (int64, bool) {
		for _, k := range path {
			if n.Kind() != datamodel.Kind_Map {
				return 0, false
			}
			next, err := n.LookupByString(k)
			if err != nil {
				return 0, false
			}
			n = next
		}
		v, err := n.AsInt()
		return v, err == nil
	}
}

// Block types. Their names appear in error messages.
var (
	headType        = newBlockType("head", "Head", checkHead, versionAt("version"))
	signedHeadType  = newBlockType("signed head", "SignedHead", checkSignedHead, versionAt("head", "version"))
	pinsetType      = newBlockType("pinset", "Pinset", checkPinset, nil)
	listType        = newBlockType("list", "ChunkList", checkList, nil)
	memberChunkType = newBlockType("member chunk", "MemberChunk", checkMemberChunk, nil)
	shardChunkType  = newBlockType("shard chunk", "ShardChunk", checkShardChunk, nil)
	logChunkType    = newBlockType("log chunk", "LogChunk", checkLogChunk, nil)
	allocationType  = newBlockType("allocation", "Allocation", checkAllocation, nil)
	ackType         = newBlockType("ack", "Ack", checkAck, versionAt("version"))
	signedAckType   = newBlockType("signed ack", "SignedAck", checkSignedAck, versionAt("ack", "version"))
	offerType       = newBlockType("offer", "Offer", checkOffer, versionAt("version"))
	signedOfferType = newBlockType("signed offer", "SignedOffer", checkSignedOffer, versionAt("offer", "version"))
	auditType       = newBlockType("audit", "Audit", checkAudit, versionAt("version")).since(checkAuditVersion)
	signedAuditType = newBlockType("signed audit", "SignedAudit", checkSignedAudit, versionAt("audit", "version")).since(checkAuditVersion)
)

// NewBlock wraps encoded bytes in a block with their CID.
func NewBlock(data []byte) blocks.Block {
	b, err := blocks.NewBlockWithCid(data, CID(data))
	if err != nil {
		// Only fails on a CID mismatch, impossible here.
		panic(fmt.Sprintf("dag: new block: %v", err))
	}
	return b
}

// EncodeSignedHead returns the canonical block bytes of h after checking it.
func EncodeSignedHead(h SignedHead) ([]byte, error) { return signedHeadType.encode(&h) }

// DecodeSignedHead strictly decodes a signed head block. It does not verify
// the signature: that is package trust's job.
func DecodeSignedHead(data []byte) (SignedHead, error) {
	h, _, err := SplitSignedHead(data)
	return h, err
}

// EncodePinset returns the canonical block bytes of p after checking it.
func EncodePinset(p Pinset) ([]byte, error) { return pinsetType.encode(&p) }

// DecodePinset strictly decodes a pinset block.
func DecodePinset(data []byte) (Pinset, error) { return deref(pinsetType.decode(data, cid.Undef)) }

// EncodeList returns the canonical block bytes of l after the checks that
// need no knowledge of its element type.
func EncodeList(l List) ([]byte, error) { return listType.encode(&l) }

// DecodeList strictly decodes a list block. The checks that depend on the
// element type (count against chunk size) are made when the list is read
// through a Store.
func DecodeList(data []byte) (List, error) { return deref(listType.decode(data, cid.Undef)) }

// EncodeMemberChunk returns the canonical block bytes of a member chunk.
func EncodeMemberChunk(c MemberChunk) ([]byte, error) { return memberChunkType.encode(&c) }

// DecodeMemberChunk strictly decodes a member chunk block.
func DecodeMemberChunk(data []byte) (MemberChunk, error) {
	return decodeMemberChunk(data, cid.Undef)
}

func decodeMemberChunk(data []byte, c cid.Cid) (MemberChunk, error) {
	v, _, err := decodeDirect(memberChunkType, memberChunkFields, data, c)
	return v, err
}

// EncodeShardChunk returns the canonical block bytes of a shard chunk.
func EncodeShardChunk(c ShardChunk) ([]byte, error) { return shardChunkType.encode(&c) }

// DecodeShardChunk strictly decodes a shard chunk block.
func DecodeShardChunk(data []byte) (ShardChunk, error) {
	return decodeShardChunk(data, cid.Undef)
}

func decodeShardChunk(data []byte, c cid.Cid) (ShardChunk, error) {
	v, _, err := decodeDirect(shardChunkType, shardChunkFields, data, c)
	return v, err
}

// EncodeLogChunk returns the canonical block bytes of a log chunk.
func EncodeLogChunk(c LogChunk) ([]byte, error) { return logChunkType.encode(&c) }

// DecodeLogChunk strictly decodes a log chunk block. ACK signatures inside
// are not verified here.
func DecodeLogChunk(data []byte) (LogChunk, error) {
	return deref(logChunkType.decode(data, cid.Undef))
}

// EncodeAllocation returns the canonical block bytes of a after checking it.
func EncodeAllocation(a Allocation) ([]byte, error) { return allocationType.encode(&a) }

// DecodeAllocation strictly decodes an allocation block.
func DecodeAllocation(data []byte) (Allocation, error) {
	return deref(allocationType.decode(data, cid.Undef))
}

// EncodeSignedAck returns the canonical block bytes of a signed ACK.
func EncodeSignedAck(a SignedAck) ([]byte, error) { return signedAckType.encode(&a) }

// DecodeSignedAck strictly decodes a signed ACK; the signature is not verified.
func DecodeSignedAck(data []byte) (SignedAck, error) {
	a, _, err := SplitSignedAck(data)
	return a, err
}

// EncodeSignedOffer returns the canonical block bytes of a signed offer.
func EncodeSignedOffer(o SignedOffer) ([]byte, error) { return signedOfferType.encode(&o) }

// DecodeSignedOffer strictly decodes a signed offer; the signature is not verified.
func DecodeSignedOffer(data []byte) (SignedOffer, error) {
	o, _, err := SplitSignedOffer(data)
	return o, err
}

// EncodeSignedAudit returns the canonical block bytes of a signed audit.
func EncodeSignedAudit(a SignedAudit) ([]byte, error) { return signedAuditType.encode(&a) }

// DecodeSignedAudit strictly decodes a signed audit; the signature is not
// verified.
func DecodeSignedAudit(data []byte) (SignedAudit, error) {
	a, _, err := SplitSignedAudit(data)
	return a, err
}

// HeadSigningBytes returns the bytes a curator signs for h:
// HeadDomain || dagcbor(h). h is checked first.
func HeadSigningBytes(h Head) ([]byte, error) { return signingBytes(headType, HeadDomain, &h) }

// AckSigningBytes returns the bytes a follower signs for a:
// AckDomain || dagcbor(a).
func AckSigningBytes(a Ack) ([]byte, error) { return signingBytes(ackType, AckDomain, &a) }

// OfferSigningBytes returns the bytes a follower signs for o:
// OfferDomain || dagcbor(o).
func OfferSigningBytes(o Offer) ([]byte, error) { return signingBytes(offerType, OfferDomain, &o) }

// AuditSigningBytes returns the bytes a curator signs for a:
// AuditDomain || dagcbor(a).
func AuditSigningBytes(a Audit) ([]byte, error) { return signingBytes(auditType, AuditDomain, &a) }

func signingBytes[T any](bt *blockType[T], domain string, v *T) ([]byte, error) {
	b, err := bt.encode(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(domain)+len(b))
	out = append(out, domain...)
	return append(out, b...), nil
}

func deref[T any](p *T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return *p, nil
}
