package dag

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/schema"
	"github.com/multiformats/go-multihash"
)

// codecCase is one fixture of one block type, encoded and decoded through
// the exported functions.
type codecCase struct {
	name    string
	version int // the format version of the golden file
	value   any
	encode  func() ([]byte, error)
	decode  func([]byte) (any, error)
}

func caseOf[T any](name string, version int, v T, enc func(T) ([]byte, error), dec func([]byte) (T, error)) codecCase {
	return codecCase{
		name:    name,
		version: version,
		value:   v,
		encode:  func() ([]byte, error) { return enc(v) },
		decode:  func(b []byte) (any, error) { return dec(b) },
	}
}

// codecCases are the golden vectors. The version 1 files are kept as they
// were written by format version 1: this code must still read them.
func codecCases() []codecCase {
	noLog := fixtureAllocation()
	noLog.Log = nil
	noOverrides := fixtureAllocation()
	noOverrides.Overrides = []Override{}
	emptyPinset := fixturePinset()
	emptyPinset.CRDTHeads = []cid.Cid{}
	released := v1Ack(fixtureSignedAck())
	released.Ack.State = StateReleased
	return []codecCase{
		caseOf("signed-head", 1, v1Head(fixtureSignedHead()), EncodeSignedHead, DecodeSignedHead),
		caseOf("signed-head-genesis", 1, v1Head(fixtureGenesis()), EncodeSignedHead, DecodeSignedHead),
		caseOf("pinset", 1, fixturePinset(), EncodePinset, DecodePinset),
		caseOf("pinset-empty", 1, emptyPinset, EncodePinset, DecodePinset),
		caseOf("list", 1, fixtureList(), EncodeList, DecodeList),
		caseOf("list-empty", 1, List{Chunks: []cid.Cid{}}, EncodeList, DecodeList),
		caseOf("member-chunk", 1, fixtureMemberChunk(), EncodeMemberChunk, DecodeMemberChunk),
		caseOf("shard-chunk", 1, fixtureShardChunk(), EncodeShardChunk, DecodeShardChunk),
		caseOf("log-chunk", 1, v1LogChunk(), EncodeLogChunk, DecodeLogChunk),
		caseOf("allocation", 1, fixtureAllocation(), EncodeAllocation, DecodeAllocation),
		caseOf("allocation-no-log", 1, noLog, EncodeAllocation, DecodeAllocation),
		caseOf("allocation-no-overrides", 1, noOverrides, EncodeAllocation, DecodeAllocation),
		caseOf("signed-ack", 1, v1Ack(fixtureSignedAck()), EncodeSignedAck, DecodeSignedAck),
		caseOf("signed-ack-released", 1, released, EncodeSignedAck, DecodeSignedAck),
		caseOf("signed-offer", 1, v1Offer(fixtureSignedOffer()), EncodeSignedOffer, DecodeSignedOffer),

		caseOf("v2-signed-head", 2, fixtureSignedHead(), EncodeSignedHead, DecodeSignedHead),
		caseOf("v2-signed-ack", 2, fixtureSignedAck(), EncodeSignedAck, DecodeSignedAck),
		caseOf("v2-signed-offer", 2, fixtureSignedOffer(), EncodeSignedOffer, DecodeSignedOffer),
		caseOf("v2-signed-audit", 2, fixtureSignedAudit(), EncodeSignedAudit, DecodeSignedAudit),
		caseOf("v2-signed-audit-fail", 2, fixtureFailedAudit(), EncodeSignedAudit, DecodeSignedAudit),
		caseOf("v2-log-chunk", 2, fixtureLogChunkV2(), EncodeLogChunk, DecodeLogChunk),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := tc.decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(tc.value)) {
				t.Fatalf("decode(encode(v)) = %+v, want %+v", got, tc.value)
			}
			b2, err := tc.encode()
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("second encode differs (err %v)", err)
			}
		})
	}
}

// normalize returns a copy of v with every empty slice set to nil: an
// empty list encodes the same either way.
func normalize(v any) any {
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	rv.Set(reflect.ValueOf(v))
	out := reflect.New(rv.Type()).Elem()
	normalizeInto(out, rv)
	return out.Interface()
}

func normalizeInto(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Slice:
		if src.Len() == 0 {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			normalizeInto(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		normalizeInto(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Struct:
		if src.Type() == reflect.TypeOf(cid.Cid{}) {
			dst.Set(src)
			return
		}
		for i := range src.NumField() {
			normalizeInto(dst.Field(i), src.Field(i))
		}
	default:
		dst.Set(src)
	}
}

// TestGoFieldNames: bindnode encodes by field position but decodes by name
// (strings.Title of the schema field name); both must agree for every type.
func TestGoFieldNames(t *testing.T) {
	goTypes := map[string]reflect.Type{
		"Signature": reflect.TypeOf(Signature{}), "Head": reflect.TypeOf(Head{}),
		"SignedHead": reflect.TypeOf(SignedHead{}), "Pinset": reflect.TypeOf(Pinset{}),
		"Shard": reflect.TypeOf(Shard{}), "Member": reflect.TypeOf(Member{}),
		"ChunkList": reflect.TypeOf(List{}), "MemberChunk": reflect.TypeOf(MemberChunk{}),
		"ShardChunk": reflect.TypeOf(ShardChunk{}), "LogChunk": reflect.TypeOf(LogChunk{}),
		"Allocation": reflect.TypeOf(Allocation{}), "AllocParams": reflect.TypeOf(AllocParams{}),
		"Override": reflect.TypeOf(Override{}), "Ack": reflect.TypeOf(Ack{}),
		"SignedAck": reflect.TypeOf(SignedAck{}), "Offer": reflect.TypeOf(Offer{}),
		"SignedOffer": reflect.TypeOf(SignedOffer{}), "Audit": reflect.TypeOf(Audit{}),
		"SignedAudit": reflect.TypeOf(SignedAudit{}),
	}
	n := 0
	for name, typ := range typeSystem.GetTypes() {
		st, ok := typ.(*schema.TypeStruct)
		if !ok {
			continue
		}
		n++
		gt, ok := goTypes[string(name)]
		if !ok {
			t.Errorf("schema struct %s has no Go type in this test", name)
			continue
		}
		if gt.NumField() != len(st.Fields()) {
			t.Errorf("%s: %d Go fields, %d schema fields", name, gt.NumField(), len(st.Fields()))
			continue
		}
		for i, f := range st.Fields() {
			want := strings.ToUpper(f.Name()[:1]) + f.Name()[1:]
			if got := gt.Field(i).Name; got != want {
				t.Errorf("%s field %d: Go name %s, schema name %s needs %s", name, i, got, f.Name(), want)
			}
		}
	}
	if n != len(goTypes) {
		t.Errorf("schema has %d struct types, test knows %d", n, len(goTypes))
	}
}

// badCase is a value that violates one rule. Encode must refuse it, and
// decoding its (unchecked) encoding must refuse it too, with the same
// sentinel and a message naming the field.
type badCase struct {
	name  string
	enc   func() error
	raw   func() ([]byte, error)
	dec   func([]byte) error
	want  error
	field string
}

func bad[T any](bt *blockType[T], base func() T, name string, mutate func(*T), want error, field string) badCase {
	v := base()
	mutate(&v)
	return badCase{
		name:  bt.name + "/" + name,
		enc:   func() error { _, err := bt.encode(&v); return err },
		raw:   func() ([]byte, error) { return bt.encodeUnchecked(&v) },
		dec:   func(b []byte) error { _, err := bt.decode(b, cid.Undef); return err },
		want:  want,
		field: field,
	}
}

func peers(ns ...int) [][]byte {
	out := make([][]byte, len(ns))
	for i, n := range ns {
		out[i] = fakePeer(n)
	}
	return out
}

func manyPeers(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fakePeer(i + 1)
	}
	return out
}

func cidV0() cid.Cid {
	mh, _ := multihash.Sum([]byte("v0"), multihash.SHA2_256, -1)
	return cid.NewCidV0(mh)
}

func rawCID() cid.Cid {
	mh, _ := multihash.Sum([]byte("raw"), multihash.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, mh)
}

func badCases() []badCase {
	sh, ps, li, mc, sc, lc, al, sa, so, au := fixtureSignedHead, fixturePinset, fixtureList, fixtureMemberChunk,
		fixtureShardChunk, fixtureLogChunkV2, fixtureAllocation, fixtureSignedAck, fixtureSignedOffer, fixtureSignedAudit
	longCID := func() cid.Cid {
		mh, _ := multihash.Sum(bytes.Repeat([]byte{1}, 200), multihash.IDENTITY, -1)
		return cid.NewCidV1(cid.Raw, mh)
	}
	return []badCase{
		bad(signedHeadType, sh, "version", func(h *SignedHead) { h.Head.Version = 3 }, ErrUnknownVersion, "version 3"),
		bad(signedHeadType, sh, "version0", func(h *SignedHead) { h.Head.Version = 0 }, ErrUnknownVersion, "version 0"),
		bad(signedHeadType, sh, "cluster-empty", func(h *SignedHead) { h.Head.Cluster = nil }, ErrMalformed, "head.cluster"),
		bad(signedHeadType, sh, "cluster-long", func(h *SignedHead) { h.Head.Cluster = make([]byte, 65) }, ErrTooLarge, "head.cluster"),
		bad(signedHeadType, sh, "seq", func(h *SignedHead) { h.Head.Seq = -1 }, ErrMalformed, "head.seq"),
		bad(signedHeadType, sh, "parent-v0", func(h *SignedHead) { h.Head.Parent = ptr(cidV0()) }, ErrMalformed, "head.parent"),
		bad(signedHeadType, sh, "parent-raw", func(h *SignedHead) { h.Head.Parent = ptr(rawCID()) }, ErrMalformed, "head.parent"),
		bad(signedHeadType, sh, "time", func(h *SignedHead) { h.Head.Time = -5 }, ErrMalformed, "head.time"),
		bad(signedHeadType, sh, "trust-empty", func(h *SignedHead) { h.Head.Trust = [][]byte{} }, ErrMalformed, "head.trust"),
		bad(signedHeadType, sh, "trust-order", func(h *SignedHead) { h.Head.Trust = peers(2, 1) }, ErrMalformed, "head.trust[1]"),
		bad(signedHeadType, sh, "trust-dup", func(h *SignedHead) { h.Head.Trust = peers(1, 1) }, ErrMalformed, "head.trust[1]"),
		bad(signedHeadType, sh, "trust-many", func(h *SignedHead) { h.Head.Trust = manyPeers(MaxTrust + 1) }, ErrTooLarge, "head.trust"),
		bad(signedHeadType, sh, "trust-key-empty", func(h *SignedHead) { h.Head.Trust = [][]byte{{}} }, ErrMalformed, "head.trust[0]"),
		bad(signedHeadType, sh, "members-link", func(h *SignedHead) { h.Head.Members = cidV0() }, ErrMalformed, "head.members"),
		bad(signedHeadType, sh, "sig-short", func(h *SignedHead) { h.Sig.Sig = h.Sig.Sig[:63] }, ErrMalformed, "sig.sig"),
		bad(signedHeadType, sh, "sig-long", func(h *SignedHead) { h.Sig.Sig = make([]byte, 65) }, ErrMalformed, "sig.sig"),
		bad(signedHeadType, sh, "signer-empty", func(h *SignedHead) { h.Sig.Signer = []byte{} }, ErrMalformed, "sig.signer"),
		bad(signedHeadType, sh, "signer-long", func(h *SignedHead) { h.Sig.Signer = make([]byte, 65) }, ErrTooLarge, "sig.signer"),

		bad(pinsetType, ps, "crdt-order", func(p *Pinset) { p.CRDTHeads[0], p.CRDTHeads[1] = p.CRDTHeads[1], p.CRDTHeads[0] }, ErrMalformed, "crdtHeads[1]"),
		bad(pinsetType, ps, "crdt-dup", func(p *Pinset) { p.CRDTHeads[1] = p.CRDTHeads[0] }, ErrMalformed, "crdtHeads[1]"),
		bad(pinsetType, ps, "crdt-long", func(p *Pinset) { p.CRDTHeads = []cid.Cid{longCID()} }, ErrTooLarge, "crdtHeads[0]"),
		bad(pinsetType, ps, "crdt-many", func(p *Pinset) {
			p.CRDTHeads = make([]cid.Cid, MaxCRDTHeads+1)
			for i := range p.CRDTHeads {
				p.CRDTHeads[i] = fakeCID(string(rune(i)))
			}
			sortedCIDs(p.CRDTHeads...)
		}, ErrTooLarge, "crdtHeads"),
		bad(pinsetType, ps, "pins", func(p *Pinset) { p.Pins = -1 }, ErrMalformed, "pins"),
		bad(pinsetType, ps, "bytes", func(p *Pinset) { p.Bytes = math.MinInt64 }, ErrMalformed, "bytes"),
		bad(pinsetType, ps, "shards-link", func(p *Pinset) { p.Shards = rawCID() }, ErrMalformed, "shards"),

		bad(listType, li, "count-negative", func(l *List) { l.Count = -1 }, ErrMalformed, "count"),
		bad(listType, li, "count-zero-with-chunks", func(l *List) { l.Count = 0 }, ErrMalformed, "count"),
		bad(listType, li, "count-without-chunks", func(l *List) { l.Chunks = []cid.Cid{} }, ErrMalformed, "count"),
		bad(listType, li, "count-below-chunks", func(l *List) { l.Count = 1 }, ErrMalformed, "count"),
		bad(listType, li, "chunk-link", func(l *List) { l.Chunks[1] = cidV0() }, ErrMalformed, "chunks[1]"),
		bad(listType, li, "chunks-many", func(l *List) {
			l.Chunks = make([]cid.Cid, MaxListChunks+1)
			for i := range l.Chunks {
				l.Chunks[i] = fakeCID("c")
			}
			l.Count = int64(len(l.Chunks))
		}, ErrTooLarge, "chunks"),

		bad(memberChunkType, mc, "empty", func(c *MemberChunk) { c.Items = []Member{} }, ErrMalformed, "items"),
		bad(memberChunkType, mc, "many", func(c *MemberChunk) {
			c.Items = make([]Member, MemberChunkSize+1)
			for i := range c.Items {
				c.Items[i] = fixtureMember(i)
			}
		}, ErrTooLarge, "items"),
		bad(memberChunkType, mc, "order", func(c *MemberChunk) { c.Items[0], c.Items[1] = c.Items[1], c.Items[0] }, ErrMalformed, "items[1].peer"),
		bad(memberChunkType, mc, "dup", func(c *MemberChunk) { c.Items[1].Peer = c.Items[0].Peer }, ErrMalformed, "items[1].peer"),
		bad(memberChunkType, mc, "nickname-long", func(c *MemberChunk) { c.Items[2].Nickname = strings.Repeat("x", 65) }, ErrTooLarge, "items[2].nickname"),
		bad(memberChunkType, mc, "nickname-utf8", func(c *MemberChunk) { c.Items[2].Nickname = "a\xffb" }, ErrMalformed, "items[2].nickname"),
		bad(memberChunkType, mc, "nickname-escape", func(c *MemberChunk) { c.Items[2].Nickname = "\x1b[2J" }, ErrMalformed, "items[2].nickname"),
		bad(memberChunkType, mc, "nickname-c1", func(c *MemberChunk) { c.Items[2].Nickname = "a\u009bb" }, ErrMalformed, "items[2].nickname"),
		bad(memberChunkType, mc, "domain-long", func(c *MemberChunk) { c.Items[0].Domain = strings.Repeat("d", 129) }, ErrTooLarge, "items[0].domain"),
		bad(memberChunkType, mc, "capacity", func(c *MemberChunk) { c.Items[0].Capacity = -1 }, ErrMalformed, "items[0].capacity"),
		bad(memberChunkType, mc, "admitted", func(c *MemberChunk) { c.Items[0].Admitted = -1 }, ErrMalformed, "items[0].admitted"),
		bad(memberChunkType, mc, "offline", func(c *MemberChunk) { c.Items[0].Offline = ptr(int64(-1)) }, ErrMalformed, "items[0].offline"),
		bad(memberChunkType, mc, "peer-empty", func(c *MemberChunk) { c.Items[2].Peer = nil }, ErrMalformed, "items[2].peer"),
		bad(memberChunkType, mc, "peer-long", func(c *MemberChunk) { c.Items[2].Peer = append(maxPeer(0xffffff), 0) }, ErrTooLarge, "items[2].peer"),

		bad(shardChunkType, sc, "empty", func(c *ShardChunk) { c.Items = nil }, ErrMalformed, "items"),
		bad(shardChunkType, sc, "order", func(c *ShardChunk) { c.Items[2].ID = 1 }, ErrMalformed, "items[2].id"),
		bad(shardChunkType, sc, "id", func(c *ShardChunk) { c.Items[0].ID = -1 }, ErrMalformed, "items[0].id"),
		bad(shardChunkType, sc, "bytes", func(c *ShardChunk) { c.Items[0].Bytes = -1 }, ErrMalformed, "items[0].bytes"),
		bad(shardChunkType, sc, "repl", func(c *ShardChunk) { c.Items[1].ReplMin = 4 }, ErrMalformed, "items[1].replMin"),

		bad(logChunkType, lc, "empty", func(c *LogChunk) { c.Items = []LogEntry{} }, ErrMalformed, "items"),
		bad(logChunkType, lc, "no-kind", func(c *LogChunk) { c.Items[1].Audit = nil }, ErrMalformed, "items[1]"),
		bad(logChunkType, lc, "ack-state", func(c *LogChunk) { c.Items[0].Ack.Ack.State = "lost" }, ErrMalformed, "items[0].ack.ack.state"),
		bad(logChunkType, lc, "audit-result", func(c *LogChunk) { c.Items[2].Audit.Audit.Result = "lost" }, ErrMalformed, "items[2].audit.audit.result"),
		bad(logChunkType, lc, "audit-version", func(c *LogChunk) { c.Items[1].Audit.Audit.Version = 1 }, ErrUnknownVersion, "version 1 for an audit"),
		bad(logChunkType, lc, "ack-version", func(c *LogChunk) { c.Items[0].Ack.Ack.Version = 9 }, ErrUnknownVersion, "version 9"),
		bad(logChunkType, lc, "ack-sig", func(c *LogChunk) { c.Items[0].Ack.Sig.Sig = nil }, ErrMalformed, "items[0].ack.sig.sig"),

		bad(allocationType, al, "algorithm-empty", func(a *Allocation) { a.Algorithm = "" }, ErrMalformed, "algorithm"),
		bad(allocationType, al, "algorithm-long", func(a *Allocation) { a.Algorithm = strings.Repeat("a", 129) }, ErrTooLarge, "algorithm"),
		bad(allocationType, al, "algorithm-control", func(a *Allocation) { a.Algorithm = "a\nb" }, ErrMalformed, "algorithm"),
		bad(allocationType, al, "algver", func(a *Allocation) { a.AlgVer = -1 }, ErrMalformed, "algVer"),
		bad(allocationType, al, "repl", func(a *Allocation) { a.Params.ReplMin = 5 }, ErrMalformed, "params.replMin"),
		bad(allocationType, al, "shard-target", func(a *Allocation) { a.Params.ShardTarget = -1 }, ErrMalformed, "params.shardTarget"),
		bad(allocationType, al, "epsilon", func(a *Allocation) { a.Params.Epsilon = -1 }, ErrMalformed, "params.epsilon"),
		bad(allocationType, al, "override-order", func(a *Allocation) { a.Overrides[1].Shard = 1 }, ErrMalformed, "overrides[1].shard"),
		bad(allocationType, al, "override-shard", func(a *Allocation) { a.Overrides[0].Shard = -1 }, ErrMalformed, "overrides[0].shard"),
		bad(allocationType, al, "override-pin-order", func(a *Allocation) { a.Overrides[0].Pin = peers(3, 2) }, ErrMalformed, "overrides[0].pin[1]"),
		bad(allocationType, al, "override-pin-many", func(a *Allocation) { a.Overrides[0].Pin = manyPeers(MaxOverridePeers + 1) }, ErrTooLarge, "overrides[0].pin"),
		bad(allocationType, al, "override-overlap", func(a *Allocation) { a.Overrides[1].Pin = peers(9) }, ErrMalformed, "overrides[1].exclude[1]"),
		bad(allocationType, al, "log-link", func(a *Allocation) { a.Log = ptr(cidV0()) }, ErrMalformed, "log"),

		bad(signedAckType, sa, "version", func(a *SignedAck) { a.Ack.Version = 0 }, ErrUnknownVersion, "version 0"),
		bad(signedAckType, sa, "version3", func(a *SignedAck) { a.Ack.Version = 3 }, ErrUnknownVersion, "version 3"),
		bad(signedAckType, sa, "state", func(a *SignedAck) { a.Ack.State = "Stored" }, ErrMalformed, "ack.state"),
		bad(signedAckType, sa, "state-empty", func(a *SignedAck) { a.Ack.State = "" }, ErrMalformed, "ack.state"),
		bad(signedAckType, sa, "digest-empty", func(a *SignedAck) { a.Ack.Digest = nil }, ErrMalformed, "ack.digest"),
		bad(signedAckType, sa, "digest-long", func(a *SignedAck) { a.Ack.Digest = make([]byte, MaxDigestLen+1) }, ErrTooLarge, "ack.digest"),
		bad(signedAckType, sa, "head-link", func(a *SignedAck) { a.Ack.Head = cidV0() }, ErrMalformed, "ack.head"),
		bad(signedAckType, sa, "peer-long", func(a *SignedAck) { a.Ack.Peer = make([]byte, 65) }, ErrTooLarge, "ack.peer"),
		bad(signedAckType, sa, "cluster-empty", func(a *SignedAck) { a.Ack.Cluster = nil }, ErrMalformed, "ack.cluster"),
		bad(signedAckType, sa, "seq", func(a *SignedAck) { a.Ack.Seq = -1 }, ErrMalformed, "ack.seq"),
		bad(signedAckType, sa, "shard", func(a *SignedAck) { a.Ack.Shard = -1 }, ErrMalformed, "ack.shard"),
		bad(signedAckType, sa, "bytes", func(a *SignedAck) { a.Ack.Bytes = -1 }, ErrMalformed, "ack.bytes"),
		bad(signedAckType, sa, "time", func(a *SignedAck) { a.Ack.Time = -1 }, ErrMalformed, "ack.time"),
		bad(signedAckType, sa, "sig", func(a *SignedAck) { a.Sig.Sig = a.Sig.Sig[1:] }, ErrMalformed, "sig.sig"),

		bad(signedOfferType, so, "version", func(o *SignedOffer) { o.Offer.Version = 3 }, ErrUnknownVersion, "version 3"),
		bad(signedOfferType, so, "version0", func(o *SignedOffer) { o.Offer.Version = 0 }, ErrUnknownVersion, "version 0"),
		bad(signedOfferType, so, "addrs-many", func(o *SignedOffer) { o.Offer.Addrs = make([][]byte, MaxAddrs+1) }, ErrTooLarge, "offer.addrs"),
		bad(signedOfferType, so, "addr-empty", func(o *SignedOffer) { o.Offer.Addrs = [][]byte{{}} }, ErrMalformed, "offer.addrs[0]"),
		bad(signedOfferType, so, "addr-long", func(o *SignedOffer) { o.Offer.Addrs = [][]byte{make([]byte, MaxAddrLen+1)} }, ErrTooLarge, "offer.addrs[0]"),
		bad(signedOfferType, so, "agent-long", func(o *SignedOffer) { o.Offer.Agent = strings.Repeat("a", MaxAgentLen+1) }, ErrTooLarge, "offer.agent"),
		bad(signedOfferType, so, "nickname-control", func(o *SignedOffer) { o.Offer.Nickname = "bob\r" }, ErrMalformed, "offer.nickname"),
		bad(signedOfferType, so, "domain-long", func(o *SignedOffer) { o.Offer.Domain = strings.Repeat("d", MaxDomainLen+1) }, ErrTooLarge, "offer.domain"),
		bad(signedOfferType, so, "capacity", func(o *SignedOffer) { o.Offer.Capacity = -1 }, ErrMalformed, "offer.capacity"),
		bad(signedOfferType, so, "free", func(o *SignedOffer) { o.Offer.Free = -1 }, ErrMalformed, "offer.free"),
		bad(signedOfferType, so, "time", func(o *SignedOffer) { o.Offer.Time = -1 }, ErrMalformed, "offer.time"),
		bad(signedAuditType, au, "version1", func(a *SignedAudit) { a.Audit.Version = 1 }, ErrUnknownVersion, "version 1 for an audit"),
		bad(signedAuditType, au, "version3", func(a *SignedAudit) { a.Audit.Version = 3 }, ErrUnknownVersion, "version 3"),
		bad(signedAuditType, au, "cluster-empty", func(a *SignedAudit) { a.Audit.Cluster = nil }, ErrMalformed, "audit.cluster"),
		bad(signedAuditType, au, "auditor-empty", func(a *SignedAudit) { a.Audit.Auditor = []byte{} }, ErrMalformed, "audit.auditor"),
		bad(signedAuditType, au, "auditor-long", func(a *SignedAudit) { a.Audit.Auditor = make([]byte, 65) }, ErrTooLarge, "audit.auditor"),
		bad(signedAuditType, au, "holder-empty", func(a *SignedAudit) { a.Audit.Holder = nil }, ErrMalformed, "audit.holder"),
		bad(signedAuditType, au, "holder-long", func(a *SignedAudit) { a.Audit.Holder = make([]byte, 65) }, ErrTooLarge, "audit.holder"),
		bad(signedAuditType, au, "head-link", func(a *SignedAudit) { a.Audit.Head = rawCID() }, ErrMalformed, "audit.head"),
		bad(signedAuditType, au, "seq", func(a *SignedAudit) { a.Audit.Seq = -1 }, ErrMalformed, "audit.seq"),
		bad(signedAuditType, au, "shard", func(a *SignedAudit) { a.Audit.Shard = -1 }, ErrMalformed, "audit.shard"),
		bad(signedAuditType, au, "digest-empty", func(a *SignedAudit) { a.Audit.Digest = nil }, ErrMalformed, "audit.digest"),
		bad(signedAuditType, au, "digest-long", func(a *SignedAudit) { a.Audit.Digest = make([]byte, MaxDigestLen+1) }, ErrTooLarge, "audit.digest"),
		bad(signedAuditType, au, "nonce-short", func(a *SignedAudit) { a.Audit.Nonce = a.Audit.Nonce[1:] }, ErrMalformed, "audit.nonce"),
		bad(signedAuditType, au, "nonce-long", func(a *SignedAudit) { a.Audit.Nonce = make([]byte, NonceLen+1) }, ErrMalformed, "audit.nonce"),
		bad(signedAuditType, au, "samples", func(a *SignedAudit) { a.Audit.Samples = -1 }, ErrMalformed, "audit.samples"),
		bad(signedAuditType, au, "result", func(a *SignedAudit) { a.Audit.Result = "Pass" }, ErrMalformed, "audit.result"),
		bad(signedAuditType, au, "result-empty", func(a *SignedAudit) { a.Audit.Result = "" }, ErrMalformed, "audit.result"),
		bad(signedAuditType, au, "pass-with-reason", func(a *SignedAudit) { a.Audit.Reason = "x" }, ErrMalformed, "audit.reason"),
		bad(signedAuditType, au, "fail-without-reason", func(a *SignedAudit) { a.Audit.Result = ResultFail }, ErrMalformed, "audit.reason"),
		bad(signedAuditType, au, "reason-long", func(a *SignedAudit) {
			a.Audit.Result, a.Audit.Reason = ResultFail, strings.Repeat("r", MaxReasonLen+1)
		}, ErrTooLarge, "audit.reason"),
		bad(signedAuditType, au, "reason-control", func(a *SignedAudit) { a.Audit.Result, a.Audit.Reason = ResultFail, "a\x1b[2Jb" }, ErrMalformed, "audit.reason"),
		bad(signedAuditType, au, "reason-utf8", func(a *SignedAudit) { a.Audit.Result, a.Audit.Reason = ResultFail, "a\xffb" }, ErrMalformed, "audit.reason"),
		bad(signedAuditType, au, "time", func(a *SignedAudit) { a.Audit.Time = -1 }, ErrMalformed, "audit.time"),
		bad(signedAuditType, au, "sig", func(a *SignedAudit) { a.Sig.Sig = nil }, ErrMalformed, "sig.sig"),
		bad(signedAuditType, au, "signer-long", func(a *SignedAudit) { a.Sig.Signer = make([]byte, 65) }, ErrTooLarge, "sig.signer"),

		bad(signedOfferType, so, "peer-empty", func(o *SignedOffer) { o.Offer.Peer = nil }, ErrMalformed, "offer.peer"),
	}
}

// TestLogEntryTwoKinds: a union value with both members set cannot be
// written (bindnode would silently write one of them).
func TestLogEntryTwoKinds(t *testing.T) {
	c := fixtureLogChunkV2()
	c.Items[1].Ack = c.Items[0].Ack
	_, err := EncodeLogChunk(c)
	checkErr(t, "encode", err, ErrMalformed, "items[1].(union)")
}

func TestRejectInvalidValues(t *testing.T) {
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.enc()
			checkErr(t, "encode", err, tc.want, tc.field)
			raw, rerr := tc.raw()
			if rerr != nil {
				// Not representable at all (e.g. a union with no member):
				// nothing to decode.
				if !errors.Is(rerr, ErrMalformed) {
					t.Fatalf("unchecked encode: %v, want ErrMalformed", rerr)
				}
				return
			}
			err = tc.dec(raw)
			checkErr(t, "decode", err, tc.want, tc.field)
			if !strings.Contains(err.Error(), CID(raw).String()) {
				t.Errorf("decode error %q does not name the block's CID", err)
			}
		})
	}
}

func checkErr(t *testing.T, op string, err, want error, field string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", op, err, want)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("%s: error %q does not mention %q", op, err, field)
	}
}

// reorderMaps re-builds n with every map's keys in reverse order.
func reorderMaps(t *testing.T, n datamodel.Node) datamodel.Node {
	t.Helper()
	switch n.Kind() {
	case datamodel.Kind_Map:
		type kv struct {
			k string
			v datamodel.Node
		}
		var entries []kv
		for it := n.MapIterator(); !it.Done(); {
			k, v, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			ks, _ := k.AsString()
			entries = append(entries, kv{ks, reorderMaps(t, v)})
		}
		nb := basicnode.Prototype.Map.NewBuilder()
		ma, _ := nb.BeginMap(int64(len(entries)))
		for i := len(entries) - 1; i >= 0; i-- {
			if err := ma.AssembleKey().AssignString(entries[i].k); err != nil {
				t.Fatal(err)
			}
			if err := ma.AssembleValue().AssignNode(entries[i].v); err != nil {
				t.Fatal(err)
			}
		}
		if err := ma.Finish(); err != nil {
			t.Fatal(err)
		}
		return nb.Build()
	case datamodel.Kind_List:
		nb := basicnode.Prototype.List.NewBuilder()
		la, _ := nb.BeginList(n.Length())
		for it := n.ListIterator(); !it.Done(); {
			_, v, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if err := la.AssembleValue().AssignNode(reorderMaps(t, v)); err != nil {
				t.Fatal(err)
			}
		}
		if err := la.Finish(); err != nil {
			t.Fatal(err)
		}
		return nb.Build()
	default:
		return n
	}
}

func decodeAny(t *testing.T, b []byte) datamodel.Node {
	t.Helper()
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return nb.Build()
}

func encodeAny(t *testing.T, n datamodel.Node, sort bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	opts := dagcbor.EncodeOptions{AllowLinks: true}
	if sort {
		opts.MapSortMode = codec.MapSortMode_RFC7049
	}
	if err := opts.Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRejectNonCanonical feeds alternative encodings of valid values: they
// carry the same data model but not the canonical bytes, so a signature
// over them would be ambiguous.
func TestRejectNonCanonical(t *testing.T) {
	head, err := EncodeSignedHead(fixtureSignedHead())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := EncodeSignedAck(fixtureSignedAck())
	if err != nil {
		t.Fatal(err)
	}
	seq := mustHex(t, "63 736571 182a") // "seq": 42
	if !bytes.Contains(head, seq) {
		t.Fatal("fixture head does not contain seq 42 where expected")
	}
	// Keys in the wrong order: same data model, other bytes.
	unsorted := encodeAny(t, reorderMaps(t, decodeAny(t, head)), false)
	if bytes.Equal(unsorted, head) {
		t.Fatal("reordering did not change the bytes")
	}
	// Extra unknown field in an otherwise valid head.
	extra := func() []byte {
		n := decodeAny(t, head)
		nb := basicnode.Prototype.Map.NewBuilder()
		ma, _ := nb.BeginMap(3)
		for it := n.MapIterator(); !it.Done(); {
			k, v, _ := it.Next()
			ks, _ := k.AsString()
			_ = ma.AssembleKey().AssignString(ks)
			_ = ma.AssembleValue().AssignNode(v)
		}
		_ = ma.AssembleKey().AssignString("x")
		_ = ma.AssembleValue().AssignInt(1)
		_ = ma.Finish()
		return encodeAny(t, nb.Build(), true)
	}()
	tests := []struct {
		name string
		data []byte
		dec  func([]byte) error
		want error
	}{
		{"trailing byte", append(bytes.Clone(head), 0x00), decHead, ErrMalformed},
		{"truncated", head[:len(head)-1], decHead, ErrMalformed},
		{"empty", nil, decHead, ErrMalformed},
		{"unsorted keys", unsorted, decHead, ErrMalformed},
		{"unknown field", extra, decHead, ErrMalformed},
		{"non-minimal int", bytes.Replace(head, seq, mustHex(t, "63 736571 19002a"), 1), decHead, ErrMalformed},
		{"float for int", bytes.Replace(head, seq, mustHex(t, "63 736571 fb4045000000000000"), 1), decHead, ErrMalformed},
		{"indefinite map", append(append([]byte{0xbf}, head[1:]...), 0xff), decHead, ErrMalformed},
		{"wrong type", ack, decHead, ErrMalformed},
		{"head as ack", head, decAck, ErrMalformed},
		{"huge list header", mustHex(t, "a1 656974656d73 9b 00ffffffffffffff"), decShardChunk, ErrTooLarge},
		{"huge bytes header", mustHex(t, "a1 656974656d73 81 a1 6470656572 5b 00ffffffffffffff"), decMemberChunk, ErrMalformed},
		{"deep nesting", append(bytes.Repeat([]byte{0x81}, 100), 0x01), decList, ErrMalformed},
		{"over 1 MiB", append(bytes.Clone(head), make([]byte, MaxBlockSize)...), decHead, ErrTooLarge},
		{"tag other than 42", bytes.Replace(head, []byte{0xd8, 0x2a}, []byte{0xd8, 0x2b}, 1), decHead, ErrMalformed},
		{"cid without multibase prefix", bytes.Replace(head, mustHex(t, "d82a582500"), mustHex(t, "d82a582501"), 1), decHead, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.dec(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("decode: %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func decHead(b []byte) error        { _, err := DecodeSignedHead(b); return err }
func decAck(b []byte) error         { _, err := DecodeSignedAck(b); return err }
func decList(b []byte) error        { _, err := DecodeList(b); return err }
func decShardChunk(b []byte) error  { _, err := DecodeShardChunk(b); return err }
func decMemberChunk(b []byte) error { _, err := DecodeMemberChunk(b); return err }

// TestUnknownVersionWithNewFields: a block of a later version may have
// fields this version has never heard of; it is still reported as an
// unknown version, not as garbage.
func TestUnknownVersionWithNewFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		data func() ([]byte, error)
		dec  func([]byte) error
		path []string
	}{
		{"head", func() ([]byte, error) { return EncodeSignedHead(fixtureSignedHead()) }, decHead, []string{"head"}},
		{"ack", func() ([]byte, error) { return EncodeSignedAck(fixtureSignedAck()) }, decAck, []string{"ack"}},
		{"offer", func() ([]byte, error) { return EncodeSignedOffer(fixtureSignedOffer()) },
			func(b []byte) error { _, err := DecodeSignedOffer(b); return err }, []string{"offer"}},
		{"audit", func() ([]byte, error) { return EncodeSignedAudit(fixtureSignedAudit()) },
			func(b []byte) error { _, err := DecodeSignedAudit(b); return err }, []string{"audit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.data()
			if err != nil {
				t.Fatal(err)
			}
			n := setFields(t, decodeAny(t, b), tc.path, map[string]int64{"version": Version + 1, "newField": 7})
			err = tc.dec(encodeAny(t, n, true))
			if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", Version+1)) {
				t.Fatalf("decode: %v, want ErrUnknownVersion naming version %d", err, Version+1)
			}
			// A known version with an unknown field is malformed, not
			// unknown: only the version number decides.
			n = setFields(t, decodeAny(t, b), tc.path, map[string]int64{"newField": 7})
			if err := tc.dec(encodeAny(t, n, true)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode with an unknown field: %v, want ErrMalformed", err)
			}
		})
	}
}

// setFields returns n with integer fields set in the map at path.
func setFields(t *testing.T, n datamodel.Node, path []string, set map[string]int64) datamodel.Node {
	t.Helper()
	nb := basicnode.Prototype.Map.NewBuilder()
	ma, _ := nb.BeginMap(n.Length() + int64(len(set)))
	for it := n.MapIterator(); !it.Done(); {
		k, v, _ := it.Next()
		ks, _ := k.AsString()
		if _, ok := set[ks]; ok && len(path) == 0 {
			continue
		}
		if len(path) > 0 && ks == path[0] {
			v = setFields(t, v, path[1:], set)
		}
		_ = ma.AssembleKey().AssignString(ks)
		_ = ma.AssembleValue().AssignNode(v)
	}
	if len(path) == 0 {
		for k, v := range set {
			_ = ma.AssembleKey().AssignString(k)
			_ = ma.AssembleValue().AssignInt(v)
		}
	}
	if err := ma.Finish(); err != nil {
		t.Fatal(err)
	}
	return nb.Build()
}

// TestChunkSizesFit: a full chunk of items at their maximum sizes stays
// under half of MaxBlockSize, and so does a List with MaxListChunks links.
func TestChunkSizesFit(t *testing.T) {
	members := make([]Member, MemberChunkSize)
	for i := range members {
		members[i] = maxMember(i)
	}
	shards := make([]Shard, ShardChunkSize)
	for i := range shards {
		shards[i] = maxShard(int64(i))
	}
	// Audit entries are the larger kind: a chunk of them is the largest.
	acks := make([]LogEntry, LogChunkSize)
	entries := make([]LogEntry, LogChunkSize)
	for i := range entries {
		a := maxSignedAck()
		acks[i] = LogEntry{Ack: &a}
		au := maxSignedAudit()
		entries[i] = LogEntry{Audit: &au}
	}
	chunks := make([]cid.Cid, MaxListChunks)
	for i := range chunks {
		chunks[i] = fakeCID("chunk")
	}
	for _, tc := range []struct {
		name  string
		enc   func() ([]byte, error)
		dec   func([]byte) error
		limit int
	}{
		{"member chunk", func() ([]byte, error) { return EncodeMemberChunk(MemberChunk{Items: members}) }, decMemberChunk, MaxBlockSize / 2},
		{"shard chunk", func() ([]byte, error) { return EncodeShardChunk(ShardChunk{Items: shards}) }, decShardChunk, MaxBlockSize / 2},
		{"log chunk (acks)", func() ([]byte, error) { return EncodeLogChunk(LogChunk{Items: acks}) },
			func(b []byte) error { _, err := DecodeLogChunk(b); return err }, MaxBlockSize / 2},
		{"log chunk (audits)", func() ([]byte, error) { return EncodeLogChunk(LogChunk{Items: entries}) },
			func(b []byte) error { _, err := DecodeLogChunk(b); return err }, MaxBlockSize / 2},
		{"list", func() ([]byte, error) {
			return EncodeList(List{Count: math.MaxInt64, Chunks: chunks})
		}, decList, MaxBlockSize},
	} {
		b, err := tc.enc()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(b) >= tc.limit {
			t.Errorf("%s: %d bytes, want < %d", tc.name, len(b), tc.limit)
		}
		if err := tc.dec(b); err != nil {
			t.Errorf("%s: decode at maximum size: %v", tc.name, err)
		}
		t.Logf("%s at maximum field sizes: %d bytes", tc.name, len(b))
	}
}

func TestSigningBytes(t *testing.T) {
	h := fixtureHead()
	got, err := HeadSigningBytes(h)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := headType.encode(&h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte(HeadDomain), inner...)) {
		t.Fatal("head signing bytes are not HeadDomain || dagcbor(head)")
	}
	// The inner encoding is exactly the bytes embedded in the block.
	block, _ := EncodeSignedHead(SignedHead{Head: h, Sig: fakeSig(1)})
	if !bytes.HasSuffix(block, inner) {
		t.Fatal("signed head block does not end with the head's encoding")
	}
	a, err := AckSigningBytes(fixtureAck())
	if err != nil || !bytes.HasPrefix(a, []byte(AckDomain)) {
		t.Fatalf("ack signing bytes: %v", err)
	}
	o, err := OfferSigningBytes(fixtureOffer())
	if err != nil || !bytes.HasPrefix(o, []byte(OfferDomain)) {
		t.Fatalf("offer signing bytes: %v", err)
	}
	au := fixtureAudit()
	am, err := AuditSigningBytes(au)
	if err != nil {
		t.Fatalf("audit signing bytes: %v", err)
	}
	auInner, err := auditType.encode(&au)
	if err != nil || !bytes.Equal(am, append([]byte("pinfold/v2/audit\n"), auInner...)) {
		t.Fatalf("audit signing bytes are not AuditDomain || dagcbor(audit) (%v)", err)
	}
	bad := fixtureAck()
	bad.State = "x"
	if _, err := AckSigningBytes(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signing bytes of an invalid ack: %v, want ErrMalformed", err)
	}
}

func TestIsBlockCID(t *testing.T) {
	mh512, _ := multihash.Sum([]byte("x"), multihash.SHA2_512, -1)
	mhShort, _ := multihash.Sum([]byte("x"), multihash.SHA2_256, 20)
	for _, tc := range []struct {
		c    cid.Cid
		want bool
	}{
		{fakeCID("x"), true},
		{cid.Undef, false},
		{cidV0(), false},
		{rawCID(), false},
		{cid.NewCidV1(CodecDagCBOR, mh512), false},
		{cid.NewCidV1(CodecDagCBOR, mhShort), false},
	} {
		if got := IsBlockCID(tc.c); got != tc.want {
			t.Errorf("IsBlockCID(%s) = %v, want %v", tc.c, got, tc.want)
		}
	}
}
