package pinset

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/bindnode"
	"github.com/ipld/go-ipld-prime/schema"
)

// Limits of a pin record. They are part of the wire format: every replica
// must agree on them, so they are constants, not configuration.
const (
	MaxRecordBytes    = 4096 // encoded value of one pin
	MaxNameBytes      = 512  // Pin.Name, UTF-8
	MaxMetaEntries    = 16   // entries in Pin.Meta
	MaxMetaKeyBytes   = 64   // one metadata key, UTF-8, not empty
	MaxMetaValueBytes = 512  // one metadata value, UTF-8
	MaxCIDBytes       = 128  // binary CID of a pin
	MaxReplication    = 1 << 16
)

// Pin is one entry of the pinset.
type Pin struct {
	CID     cid.Cid
	Name    string
	Size    int64     // bytes; >= 0
	Shard   int64     // >= 0; the key orders pins by shard
	ReplMin int64     // 0 = cluster default
	ReplMax int64     // 0 = cluster default; >= ReplMin when both are set
	Added   time.Time // stored as unix milliseconds (UTC)
	Meta    map[string]string
}

// schemaText is the normative IPLD schema of a pin record.
//
//go:embed pin.ipldsch
var schemaText []byte

// pinNode is the Go binding of the schema type Pin. bindnode finds fields by
// strings.Title of the schema field name, so the names must match it.
type pinNode struct {
	Cid     cid.Cid
	Name    string
	Size    int64
	Shard   int64
	ReplMin int64
	ReplMax int64
	Added   int64
	Meta    *metaNode
}

type metaNode struct {
	Keys   []string
	Values map[string]string
}

var (
	pinSchemaType = loadPinType()
	pinPrototype  = bindnode.Prototype((*pinNode)(nil), pinSchemaType).Representation()
)

func loadPinType() schema.Type {
	ts, err := ipld.LoadSchemaBytes(schemaText)
	if err != nil {
		// The schema is compiled in; every test fails if it does not load.
		panic(fmt.Sprintf("pinset: embedded schema: %v", err))
	}
	t := ts.TypeByName("Pin")
	if t == nil {
		panic("pinset: embedded schema has no type Pin")
	}
	return t
}

// Decoder limits: a record nests two containers deep (the struct and meta).
var decodeOptions = dagcbor.DecodeOptions{
	AllowLinks:            true,
	MaxDepth:              4,
	AllocationBudget:      4 * MaxRecordBytes,
	MaxCollectionPrealloc: 32,
}

var encodeOptions = dagcbor.EncodeOptions{
	AllowLinks:  true,
	MapSortMode: codec.MapSortMode_RFC7049,
}

// Check reports whether p can be stored: every field within its domain and
// limit. The error wraps ErrInvalidPin and names the field.
func (p *Pin) Check() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidPin, field, fmt.Sprintf(format, args...))
	}
	switch {
	case !p.CID.Defined():
		return bad("cid", "is undefined")
	case p.CID.ByteLen() > MaxCIDBytes:
		return bad("cid", "is %d bytes, limit %d", p.CID.ByteLen(), MaxCIDBytes)
	case p.CID.Version() == 0 && p.CID.Type() != cid.DagProtobuf:
		return bad("cid", "is version 0 with codec %#x", p.CID.Type())
	case len(p.Name) > MaxNameBytes:
		return bad("name", "is %d bytes, limit %d", len(p.Name), MaxNameBytes)
	case !utf8.ValidString(p.Name):
		return bad("name", "is not valid UTF-8")
	case p.Size < 0:
		return bad("size", "is negative")
	case p.Shard < 0:
		return bad("shard", "is negative")
	case p.ReplMin < 0 || p.ReplMin > MaxReplication:
		return bad("replication_min", "is %d, must be in [0, %d]", p.ReplMin, MaxReplication)
	case p.ReplMax < 0 || p.ReplMax > MaxReplication:
		return bad("replication_max", "is %d, must be in [0, %d]", p.ReplMax, MaxReplication)
	case p.ReplMin != 0 && p.ReplMax != 0 && p.ReplMin > p.ReplMax:
		return bad("replication_min", "%d is above replication_max %d", p.ReplMin, p.ReplMax)
	case p.Added.UnixMilli() < 0:
		return bad("added", "is before 1970")
	case len(p.Meta) > MaxMetaEntries:
		return bad("meta", "has %d entries, limit %d", len(p.Meta), MaxMetaEntries)
	}
	for k, v := range p.Meta {
		switch {
		case k == "" || len(k) > MaxMetaKeyBytes || !utf8.ValidString(k):
			return bad("meta", "key %q must be 1 to %d bytes of UTF-8", k, MaxMetaKeyBytes)
		case len(v) > MaxMetaValueBytes || !utf8.ValidString(v):
			return bad("meta", "value of %q must be at most %d bytes of UTF-8", k, MaxMetaValueBytes)
		}
	}
	return nil
}

// EncodePin checks p and returns its canonical dag-cbor record bytes,
// written by appendCanonical (tests hold it to bindnode's encoding,
// encodeStrict, byte for byte; it is 5x faster on the import path).
func EncodePin(p Pin) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	b := appendCanonical(make([]byte, 0, 160), &p)
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: record is %d bytes, limit %d", ErrInvalidPin, len(b), MaxRecordBytes)
	}
	return b, nil
}

// encodeStrict is EncodePin through bindnode: the definition
// appendCanonical is tested against.
func encodeStrict(p Pin) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	b, err := encodeNode(toNode(&p))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPin, err)
	}
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: record is %d bytes, limit %d", ErrInvalidPin, len(b), MaxRecordBytes)
	}
	return b, nil
}

// DecodePin strictly decodes record bytes: at most MaxRecordBytes, the
// schema exactly, every field within its limit, and canonical (re-encoding
// gives the same bytes). Anything else wraps ErrMalformed.
func DecodePin(data []byte) (Pin, error) {
	if len(data) > MaxRecordBytes {
		return Pin{}, fmt.Errorf("%w: record is %d bytes, limit %d", ErrMalformed, len(data), MaxRecordBytes)
	}
	if p, ok := decodeFast(data); ok {
		return p, nil
	}
	return decodeStrict(data)
}

// decodeStrict is DecodePin through bindnode alone: the definition the
// fast path is tested against.
func decodeStrict(data []byte) (Pin, error) {
	if len(data) > MaxRecordBytes {
		return Pin{}, fmt.Errorf("%w: record is %d bytes, limit %d", ErrMalformed, len(data), MaxRecordBytes)
	}
	n, err := decodeNode(data)
	if err != nil {
		return Pin{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	p := fromNode(n)
	if err := p.Check(); err != nil {
		return Pin{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	enc, err := encodeNode(n)
	if err != nil {
		return Pin{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(enc, data) {
		return Pin{}, fmt.Errorf("%w: not canonical dag-cbor", ErrMalformed)
	}
	return p, nil
}

func toNode(p *Pin) *pinNode {
	n := &pinNode{
		Cid:     p.CID,
		Name:    p.Name,
		Size:    p.Size,
		Shard:   p.Shard,
		ReplMin: p.ReplMin,
		ReplMax: p.ReplMax,
		Added:   p.Added.UnixMilli(),
	}
	if len(p.Meta) > 0 {
		m := &metaNode{Keys: make([]string, 0, len(p.Meta)), Values: make(map[string]string, len(p.Meta))}
		for k, v := range p.Meta {
			m.Keys = append(m.Keys, k)
			m.Values[k] = v
		}
		slices.Sort(m.Keys) // the encoder sorts too; this keeps Keys deterministic
		n.Meta = m
	}
	return n
}

func fromNode(n *pinNode) Pin {
	p := Pin{
		CID:     n.Cid,
		Name:    n.Name,
		Size:    n.Size,
		Shard:   n.Shard,
		ReplMin: n.ReplMin,
		ReplMax: n.ReplMax,
		Added:   time.UnixMilli(n.Added).UTC(),
	}
	if n.Meta != nil {
		p.Meta = make(map[string]string, len(n.Meta.Values))
		for k, v := range n.Meta.Values {
			p.Meta[k] = v
		}
	}
	return p
}

func encodeNode(n *pinNode) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("cannot encode: %v", r)
		}
	}()
	var buf bytes.Buffer
	buf.Grow(128)
	if err := encodeOptions.Encode(bindnode.Wrap(n, pinSchemaType).Representation(), &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeNode(data []byte) (n *pinNode, err error) {
	// go-ipld-prime is not promised panic-free on hostile input: a panic is
	// a malformed record to us, never a crash.
	defer func() {
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("cannot decode: %v", r)
		}
	}()
	nb := pinPrototype.NewBuilder()
	if err := decodeOptions.Decode(nb, bytes.NewReader(data)); err != nil {
		return nil, err
	}
	var ok bool
	n, ok = bindnode.Unwrap(nb.Build()).(*pinNode)
	if !ok {
		return nil, errors.New("unexpected node type")
	}
	if n.Meta != nil && len(n.Meta.Keys) == 0 {
		return nil, errors.New("meta present but empty")
	}
	return n, nil
}

// Keys. A pin lives under /<shard>/<cid> in the CRDT, the shard written as
// 16 lowercase hex digits so that byte order of keys is shard order, and the
// CID as the string of its version-1 form, so a CIDv0 and its CIDv1 name the
// same pin.

const shardDigits = 16

// shardPrefix returns "/<16 hex digits>".
func shardPrefix(shard int64) string {
	var b [1 + shardDigits]byte
	b[0] = '/'
	s := strconv.FormatUint(uint64(shard), 16)
	for i := 1; i <= shardDigits-len(s); i++ {
		b[i] = '0'
	}
	copy(b[1+shardDigits-len(s):], s)
	return string(b[:])
}

// cidKey returns the string of the version-1 form of c.
func cidKey(c cid.Cid) string {
	if c.Version() == 0 {
		c = cid.NewCidV1(cid.DagProtobuf, c.Hash())
	}
	return c.String()
}

// pinKey returns the CRDT key of a pin: /<shard>/<cidKey>.
func pinKey(shard int64, c cid.Cid) string {
	return shardPrefix(shard) + "/" + cidKey(c)
}

// parseKey splits a CRDT key into shard and CID key string. It accepts only
// the exact layout pinKey writes.
func parseKey(k string) (int64, string, error) {
	shard, ck, err := splitKey(k)
	if err != nil {
		return 0, "", err
	}
	c, err := cid.Decode(ck)
	if err != nil || c.Version() != 1 || c.String() != ck {
		return 0, "", fmt.Errorf("%w: key %.80q: not a CIDv1 in its canonical string form", ErrMalformed, k)
	}
	return shard, ck, nil
}

// splitKey is parseKey without the CID check: the shard, and the text
// after it. decodeEntry checks that text against the record's CID instead.
func splitKey(k string) (int64, string, error) {
	if len(k) < 2+shardDigits+1 || k[0] != '/' || k[1+shardDigits] != '/' {
		return 0, "", fmt.Errorf("%w: key %.80q is not /<shard>/<cid>", ErrMalformed, k)
	}
	shard, err := parseShard(k[1 : 1+shardDigits])
	if err != nil {
		return 0, "", fmt.Errorf("key %.80q: %w", k, err)
	}
	return shard, k[2+shardDigits:], nil
}

// parseShard parses exactly 16 lowercase hex digits.
func parseShard(hex string) (int64, error) {
	if len(hex) != shardDigits {
		return 0, fmt.Errorf("%w: shard %.20q is not 16 hex digits", ErrMalformed, hex)
	}
	for i := 0; i < len(hex); i++ {
		if !(hex[i] >= '0' && hex[i] <= '9' || hex[i] >= 'a' && hex[i] <= 'f') {
			return 0, fmt.Errorf("%w: shard %q is not 16 lowercase hex digits", ErrMalformed, hex)
		}
	}
	u, err := strconv.ParseUint(hex, 16, 64)
	if err != nil || u > math.MaxInt64 {
		return 0, fmt.Errorf("%w: shard %q out of range", ErrMalformed, hex)
	}
	return int64(u), nil
}

// decodeEntry decodes the record stored under key k and checks that key and
// record agree on shard and CID.
func decodeEntry(k string, v []byte) (Pin, error) {
	// The CID text is not parsed: it must equal the canonical key of the
	// record's CID, which makes it a canonical CIDv1 string.
	shard, ck, err := splitKey(k)
	if err != nil {
		return Pin{}, err
	}
	p, err := DecodePin(v)
	if err != nil {
		return Pin{}, fmt.Errorf("key %.80q: %w", k, err)
	}
	if p.Shard != shard || cidKey(p.CID) != ck {
		return Pin{}, fmt.Errorf("%w: key %.80q does not match record (shard %d, cid %s)", ErrMalformed, k, p.Shard, p.CID)
	}
	return p, nil
}
