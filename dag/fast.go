package dag

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/ipfs/go-cid"
)

// Signed records (heads, ACKs, offers, audits) are decoded on every verification,
// so they have a direct decoder: a strict reader of canonical dag-cbor for
// exactly their schema, followed by the same semantic checks as the bindnode
// path. It accepts only the canonical encoding (definite lengths, minimal
// integers, map keys in canonical order, no extra bytes), so no re-encoding
// is needed, and it hands back the exact bytes of the signed inner record.
//
// The bindnode path (blockType.decode) is the reference: tests and fuzz
// targets check that both accept the same inputs and yield the same values.

// errTruncated and friends describe structural failures; they are always
// wrapped in ErrMalformed.
var errTruncated = errors.New("unexpected end of block")

type reader struct {
	b    []byte
	off  int
	span [2]int // start and end of the signed inner record
}

func (r *reader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, r.off, fmt.Sprintf(format, args...))
}

// head reads a CBOR initial byte and argument, rejecting indefinite lengths,
// reserved values and non-minimal arguments.
func (r *reader) head() (major byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, r.fail("%v", errTruncated)
	}
	ib := r.b[r.off]
	major, ai := ib>>5, ib&0x1f
	r.off++
	var n int
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	default:
		return 0, 0, r.fail("indefinite length or reserved value 0x%02x", ib)
	}
	if len(r.b)-r.off < n {
		return 0, 0, r.fail("%v", errTruncated)
	}
	for _, c := range r.b[r.off : r.off+n] {
		arg = arg<<8 | uint64(c)
	}
	r.off += n
	if major == 7 {
		// Simple values and floats never appear in these records.
		return 0, 0, r.fail("unexpected simple value or float")
	}
	minimal := (n == 1 && arg >= 24) || (n == 2 && arg > 0xff) || (n == 4 && arg > 0xffff) || (n == 8 && arg > 0xffffffff)
	if !minimal {
		return 0, 0, r.fail("integer not minimally encoded")
	}
	return major, arg, nil
}

func (r *reader) expect(major byte, what string) (uint64, error) {
	m, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		return 0, r.fail("want %s, found major type %d", what, m)
	}
	return arg, nil
}

func (r *reader) mapHeader(n int) error {
	arg, err := r.expect(5, "map")
	if err != nil {
		return err
	}
	if arg != uint64(n) {
		return r.fail("map of %d entries, want %d", arg, n)
	}
	return nil
}

// key reads a map key that must be exactly k (keys come in canonical order).
func (r *reader) key(k string) error {
	start := r.off
	got, err := r.raw(3, "map key")
	if err != nil {
		return err
	}
	if string(got) != k {
		r.off = start
		return r.fail("map key %q, want %q (keys must be exactly the schema's, in canonical order)", truncate(string(got)), k)
	}
	return nil
}

func (r *reader) int64() (int64, error) {
	m, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	if arg > math.MaxInt64 {
		return 0, r.fail("integer out of int64 range")
	}
	switch m {
	case 0:
		return int64(arg), nil
	case 1:
		return -1 - int64(arg), nil
	default:
		return 0, r.fail("want integer, found major type %d", m)
	}
}

func (r *reader) raw(major byte, what string) ([]byte, error) {
	arg, err := r.expect(major, what)
	if err != nil {
		return nil, err
	}
	if arg > uint64(len(r.b)-r.off) {
		return nil, r.fail("%v", errTruncated)
	}
	v := r.b[r.off : r.off+int(arg)]
	r.off += int(arg)
	return v, nil
}

// bytes returns a copy: decoded values never alias the caller's buffer.
func (r *reader) bytes() ([]byte, error) {
	v, err := r.raw(2, "bytes")
	if err != nil {
		return nil, err
	}
	return slices.Clone(v), nil
}

func (r *reader) text() (string, error) {
	v, err := r.raw(3, "string")
	return string(v), err
}

func (r *reader) link() (cid.Cid, error) {
	if len(r.b)-r.off < 2 || r.b[r.off] != 0xd8 || r.b[r.off+1] != 42 {
		return cid.Undef, r.fail("want a link (tag 42)")
	}
	r.off += 2
	v, err := r.raw(2, "link bytes")
	if err != nil {
		return cid.Undef, err
	}
	if len(v) == 0 || v[0] != 0 {
		return cid.Undef, r.fail("link without the identity multibase prefix")
	}
	c, err := cid.Cast(v[1:])
	if err != nil {
		return cid.Undef, r.fail("link: %v", err)
	}
	return c, nil
}

func (r *reader) nullableLink() (*cid.Cid, error) {
	if r.off < len(r.b) && r.b[r.off] == 0xf6 {
		r.off++
		return nil, nil
	}
	c, err := r.link()
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// bytesList reads a list of byte strings of at most limit entries.
func (r *reader) bytesList(field string, limit int) ([][]byte, error) {
	n, err := r.expect(4, "list")
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, tooLarge(field+" (entries)", int(min(n, math.MaxInt32)), limit)
	}
	out := make([][]byte, n)
	for i := range out {
		if out[i], err = r.bytes(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// field is one map entry of a struct decoded by a direct decoder.
type field[T any] struct {
	name  string
	parse func(r *reader, v *T) error
}

// canonical sorts fields into dag-cbor's canonical key order: shorter keys
// first, then bytewise.
func canonical[T any](fs ...field[T]) []field[T] {
	slices.SortFunc(fs, func(a, b field[T]) int {
		if len(a.name) != len(b.name) {
			return len(a.name) - len(b.name)
		}
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return fs
}

func parseStruct[T any](r *reader, fs []field[T], v *T) error {
	if err := r.mapHeader(len(fs)); err != nil {
		return err
	}
	for _, f := range fs {
		if err := r.key(f.name); err != nil {
			return err
		}
		if err := f.parse(r, v); err != nil {
			return err
		}
	}
	return nil
}

func intField[T any](name string, get func(*T) *int64) field[T] {
	return field[T]{name, func(r *reader, v *T) (err error) { *get(v), err = r.int64(); return }}
}

func bytesField[T any](name string, get func(*T) *[]byte) field[T] {
	return field[T]{name, func(r *reader, v *T) (err error) { *get(v), err = r.bytes(); return }}
}

func textField[T any](name string, get func(*T) *string) field[T] {
	return field[T]{name, func(r *reader, v *T) (err error) { *get(v), err = r.text(); return }}
}

func linkField[T any](name string, get func(*T) *cid.Cid) field[T] {
	return field[T]{name, func(r *reader, v *T) (err error) { *get(v), err = r.link(); return }}
}

var signatureFields = canonical(
	bytesField("signer", func(s *Signature) *[]byte { return &s.Signer }),
	bytesField("sig", func(s *Signature) *[]byte { return &s.Sig }),
)

var headFields = canonical(
	intField("version", func(h *Head) *int64 { return &h.Version }),
	bytesField("cluster", func(h *Head) *[]byte { return &h.Cluster }),
	intField("seq", func(h *Head) *int64 { return &h.Seq }),
	field[Head]{"parent", func(r *reader, h *Head) (err error) { h.Parent, err = r.nullableLink(); return }},
	intField("time", func(h *Head) *int64 { return &h.Time }),
	field[Head]{"trust", func(r *reader, h *Head) (err error) { h.Trust, err = r.bytesList("head.trust", MaxTrust); return }},
	linkField("pinset", func(h *Head) *cid.Cid { return &h.Pinset }),
	linkField("members", func(h *Head) *cid.Cid { return &h.Members }),
	linkField("allocation", func(h *Head) *cid.Cid { return &h.Allocation }),
)

var ackFields = canonical(
	intField("version", func(a *Ack) *int64 { return &a.Version }),
	bytesField("cluster", func(a *Ack) *[]byte { return &a.Cluster }),
	bytesField("peer", func(a *Ack) *[]byte { return &a.Peer }),
	linkField("head", func(a *Ack) *cid.Cid { return &a.Head }),
	intField("seq", func(a *Ack) *int64 { return &a.Seq }),
	intField("shard", func(a *Ack) *int64 { return &a.Shard }),
	bytesField("digest", func(a *Ack) *[]byte { return &a.Digest }),
	intField("bytes", func(a *Ack) *int64 { return &a.Bytes }),
	textField("state", func(a *Ack) *string { return &a.State }),
	intField("time", func(a *Ack) *int64 { return &a.Time }),
)

var offerFields = canonical(
	intField("version", func(o *Offer) *int64 { return &o.Version }),
	bytesField("cluster", func(o *Offer) *[]byte { return &o.Cluster }),
	bytesField("peer", func(o *Offer) *[]byte { return &o.Peer }),
	intField("capacity", func(o *Offer) *int64 { return &o.Capacity }),
	intField("free", func(o *Offer) *int64 { return &o.Free }),
	textField("agent", func(o *Offer) *string { return &o.Agent }),
	field[Offer]{"addrs", func(r *reader, o *Offer) (err error) { o.Addrs, err = r.bytesList("offer.addrs", MaxAddrs); return }},
	textField("nickname", func(o *Offer) *string { return &o.Nickname }),
	textField("domain", func(o *Offer) *string { return &o.Domain }),
	intField("time", func(o *Offer) *int64 { return &o.Time }),
)

var auditFields = canonical(
	intField("version", func(a *Audit) *int64 { return &a.Version }),
	bytesField("cluster", func(a *Audit) *[]byte { return &a.Cluster }),
	bytesField("auditor", func(a *Audit) *[]byte { return &a.Auditor }),
	bytesField("holder", func(a *Audit) *[]byte { return &a.Holder }),
	linkField("head", func(a *Audit) *cid.Cid { return &a.Head }),
	intField("seq", func(a *Audit) *int64 { return &a.Seq }),
	intField("shard", func(a *Audit) *int64 { return &a.Shard }),
	bytesField("digest", func(a *Audit) *[]byte { return &a.Digest }),
	bytesField("nonce", func(a *Audit) *[]byte { return &a.Nonce }),
	intField("samples", func(a *Audit) *int64 { return &a.Samples }),
	textField("result", func(a *Audit) *string { return &a.Result }),
	textField("reason", func(a *Audit) *string { return &a.Reason }),
	intField("time", func(a *Audit) *int64 { return &a.Time }),
)

// envelope builds the fields of a signed record {inner, sig}; parsing the
// inner record notes where its bytes are in r.span.
func envelope[S, T any](innerName string, inner func(*S) *T, sig func(*S) *Signature, innerFields []field[T]) []field[S] {
	return canonical(
		field[S]{innerName, func(r *reader, s *S) error {
			r.span[0] = r.off
			err := parseStruct(r, innerFields, inner(s))
			r.span[1] = r.off
			return err
		}},
		field[S]{"sig", func(r *reader, s *S) error { return parseStruct(r, signatureFields, sig(s)) }},
	)
}

var (
	signedHeadFields = envelope("head", func(s *SignedHead) *Head { return &s.Head },
		func(s *SignedHead) *Signature { return &s.Sig }, headFields)
	signedAckFields = envelope("ack", func(s *SignedAck) *Ack { return &s.Ack },
		func(s *SignedAck) *Signature { return &s.Sig }, ackFields)
	signedOfferFields = envelope("offer", func(s *SignedOffer) *Offer { return &s.Offer },
		func(s *SignedOffer) *Signature { return &s.Sig }, offerFields)
	signedAuditFields = envelope("audit", func(s *SignedAudit) *Audit { return &s.Audit },
		func(s *SignedAudit) *Signature { return &s.Sig }, auditFields)
)

// decodeSigned decodes a signed record with the direct decoder and returns
// it with the message its signature covers: domain || inner record bytes.
// c names the block in errors; if undefined it is computed from data.
func decodeSigned[S any](bt *blockType[S], fs []field[S], domain string, data []byte, c cid.Cid) (S, []byte, error) {
	v, r, err := decodeDirect(bt, fs, data, c)
	if err != nil {
		return v, nil, err
	}
	msg := make([]byte, 0, len(domain)+r.span[1]-r.span[0])
	msg = append(append(msg, domain...), data[r.span[0]:r.span[1]]...)
	return v, msg, nil
}

// decodeDirect decodes data as a block of bt's type with the direct
// decoder fs, and checks it as bt.decode does.
func decodeDirect[S any](bt *blockType[S], fs []field[S], data []byte, c cid.Cid) (S, *reader, error) {
	var v S
	r := &reader{b: data}
	err := func() error {
		if len(data) > MaxBlockSize {
			return fmt.Errorf("%w: block is %d bytes, limit %d", ErrTooLarge, len(data), MaxBlockSize)
		}
		if err := parseStruct(r, fs, &v); err != nil {
			if verr := bt.unknownVersion(data); verr != nil {
				return verr
			}
			return err
		}
		if r.off != len(data) {
			return r.fail("%d bytes after the end of the record", len(data)-r.off)
		}
		return bt.check(&v)
	}()
	if err != nil {
		var zero S
		return zero, nil, fmt.Errorf("decode %s %s: %w", bt.name, blockName(data, c), err)
	}
	return v, r, nil
}

// The chunks of the shard and member lists are read for every head whose
// allocation is computed (a follower computes each head's), so they have
// direct decoders too.

var shardFields = canonical(
	intField("id", func(s *Shard) *int64 { return &s.ID }),
	intField("bytes", func(s *Shard) *int64 { return &s.Bytes }),
	intField("pins", func(s *Shard) *int64 { return &s.Pins }),
	intField("replMin", func(s *Shard) *int64 { return &s.ReplMin }),
	intField("replMax", func(s *Shard) *int64 { return &s.ReplMax }),
)

var shardChunkFields = canonical(field[ShardChunk]{"items", func(r *reader, c *ShardChunk) (err error) {
	c.Items, err = structList(r, ShardChunkSize, func(r *reader, s *Shard) error { return parseStruct(r, shardFields, s) })
	return
}})

// memberFields are a member's fields but offline, which is optional: a
// member without it has no "offline" key, and with it the key comes
// between "domain" and "admitted" in canonical order.
var memberFields = canonical(
	bytesField("peer", func(m *Member) *[]byte { return &m.Peer }),
	intField("capacity", func(m *Member) *int64 { return &m.Capacity }),
	textField("domain", func(m *Member) *string { return &m.Domain }),
	textField("nickname", func(m *Member) *string { return &m.Nickname }),
	intField("admitted", func(m *Member) *int64 { return &m.Admitted }),
)

func parseMember(r *reader, m *Member) error {
	n, err := r.expect(5, "map")
	if err != nil {
		return err
	}
	if n != uint64(len(memberFields)) && n != uint64(len(memberFields)+1) {
		return r.fail("map of %d entries, want %d or %d", n, len(memberFields), len(memberFields)+1)
	}
	for i, f := range memberFields {
		if i == 2 && n > uint64(len(memberFields)) {
			if err := r.key("offline"); err != nil {
				return err
			}
			off, err := r.int64()
			if err != nil {
				return err
			}
			m.Offline = &off
		}
		if err := r.key(f.name); err != nil {
			return err
		}
		if err := f.parse(r, m); err != nil {
			return err
		}
	}
	return nil
}

var memberChunkFields = canonical(field[MemberChunk]{"items", func(r *reader, c *MemberChunk) (err error) {
	c.Items, err = structList(r, MemberChunkSize, parseMember)
	return
}})

// structList reads a chunk's list of items, of at most limit entries.
func structList[T any](r *reader, limit int, parse func(*reader, *T) error) ([]T, error) {
	n, err := r.expect(4, "list")
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, tooLarge("items (entries)", int(min(n, math.MaxInt32)), limit)
	}
	out := make([]T, n)
	for i := range out {
		if err := parse(r, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SplitSignedHead decodes a signed head block exactly as DecodeSignedHead
// does and also returns the message its signature covers,
// HeadDomain || dagcbor(head), taken from the block itself.
func SplitSignedHead(data []byte) (SignedHead, []byte, error) {
	return decodeSigned(signedHeadType, signedHeadFields, HeadDomain, data, cid.Undef)
}

// SplitSignedAck decodes a signed ACK block and returns the message its
// signature covers, AckDomain || dagcbor(ack).
func SplitSignedAck(data []byte) (SignedAck, []byte, error) {
	return decodeSigned(signedAckType, signedAckFields, AckDomain, data, cid.Undef)
}

// SplitSignedOffer decodes a signed offer block and returns the message its
// signature covers, OfferDomain || dagcbor(offer).
func SplitSignedOffer(data []byte) (SignedOffer, []byte, error) {
	return decodeSigned(signedOfferType, signedOfferFields, OfferDomain, data, cid.Undef)
}

// SplitSignedAudit decodes a signed audit block and returns the message its
// signature covers, AuditDomain || dagcbor(audit).
func SplitSignedAudit(data []byte) (SignedAudit, []byte, error) {
	return decodeSigned(signedAuditType, signedAuditFields, AuditDomain, data, cid.Undef)
}
