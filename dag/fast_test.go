package dag

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// The direct decoders of signed records and list chunks must agree with
// the reference (bindnode decode + canonical re-encode check) on every
// input: same accept/reject decision, same value, and for signed records a
// message equal to the domain followed by the reference encoding of the
// inner record.

type signedCodec struct {
	name    string
	seeds   [][]byte
	fast    func([]byte) (any, []byte, error)
	ref     func([]byte) (any, error)
	message func(any) ([]byte, error) // nil for a block that is not signed
}

func signedCodecs(t testing.TB) []signedCodec {
	enc := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []signedCodec{
		{
			name: "head",
			seeds: [][]byte{enc(EncodeSignedHead(fixtureSignedHead())), enc(EncodeSignedHead(fixtureGenesis())),
				enc(EncodeSignedHead(v1Head(fixtureSignedHead())))},
			fast:    func(b []byte) (any, []byte, error) { return SplitSignedHead(b) },
			ref:     func(b []byte) (any, error) { return deref(signedHeadType.decode(b, CID(b))) },
			message: func(v any) ([]byte, error) { return HeadSigningBytes(v.(SignedHead).Head) },
		},
		{
			name: "ack",
			seeds: [][]byte{enc(EncodeSignedAck(fixtureSignedAck())), enc(EncodeSignedAck(maxSignedAck())),
				enc(EncodeSignedAck(v1Ack(fixtureSignedAck())))},
			fast:    func(b []byte) (any, []byte, error) { return SplitSignedAck(b) },
			ref:     func(b []byte) (any, error) { return deref(signedAckType.decode(b, CID(b))) },
			message: func(v any) ([]byte, error) { return AckSigningBytes(v.(SignedAck).Ack) },
		},
		{
			name:    "offer",
			seeds:   [][]byte{enc(EncodeSignedOffer(fixtureSignedOffer()))},
			fast:    func(b []byte) (any, []byte, error) { return SplitSignedOffer(b) },
			ref:     func(b []byte) (any, error) { return deref(signedOfferType.decode(b, CID(b))) },
			message: func(v any) ([]byte, error) { return OfferSigningBytes(v.(SignedOffer).Offer) },
		},
		{
			name: "audit",
			seeds: [][]byte{enc(EncodeSignedAudit(fixtureSignedAudit())), enc(EncodeSignedAudit(fixtureFailedAudit())),
				enc(EncodeSignedAudit(maxSignedAudit()))},
			fast:    func(b []byte) (any, []byte, error) { return SplitSignedAudit(b) },
			ref:     func(b []byte) (any, error) { return deref(signedAuditType.decode(b, CID(b))) },
			message: func(v any) ([]byte, error) { return AuditSigningBytes(v.(SignedAudit).Audit) },
		},
		{
			name:  "shard chunk",
			seeds: [][]byte{enc(EncodeShardChunk(fixtureShardChunk())), enc(EncodeShardChunk(wideShardChunk()))},
			fast:  func(b []byte) (any, []byte, error) { v, err := DecodeShardChunk(b); return v, nil, err },
			ref:   func(b []byte) (any, error) { return deref(shardChunkType.decode(b, CID(b))) },
		},
		{
			name:  "member chunk",
			seeds: [][]byte{enc(EncodeMemberChunk(fixtureMemberChunk()))},
			fast:  func(b []byte) (any, []byte, error) { v, err := DecodeMemberChunk(b); return v, nil, err },
			ref:   func(b []byte) (any, error) { return deref(memberChunkType.decode(b, CID(b))) },
		},
	}
}

// wideShardChunk has integers of every CBOR width.
func wideShardChunk() ShardChunk {
	return ShardChunk{Items: []Shard{
		{ID: 23, Bytes: 24, Pins: 255, ReplMin: 0, ReplMax: 1},
		{ID: 256, Bytes: 1 << 20, Pins: 65535, ReplMin: 3, ReplMax: 64},
		{ID: 1 << 33, Bytes: 1<<62 + 5, Pins: 1 << 32, ReplMin: 2, ReplMax: 3},
	}}
}

func isSentinel(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnknownVersion)
}

// compareDecoders reports a disagreement between the two decoders on data.
func compareDecoders(t testing.TB, sc signedCodec, data []byte) {
	t.Helper()
	fv, msg, ferr := sc.fast(data)
	rv, rerr := sc.ref(data)
	if (ferr == nil) != (rerr == nil) {
		t.Fatalf("%s: decoders disagree on %x:\n fast: %v\n  ref: %v", sc.name, data, ferr, rerr)
	}
	if ferr != nil {
		if !isSentinel(ferr) || !isSentinel(rerr) {
			t.Fatalf("%s: error without a sentinel: fast %v, ref %v", sc.name, ferr, rerr)
		}
		// Both name a version mismatch, or neither does.
		if errors.Is(ferr, ErrUnknownVersion) != errors.Is(rerr, ErrUnknownVersion) {
			t.Fatalf("%s: version verdicts differ on %x:\n fast: %v\n  ref: %v", sc.name, data, ferr, rerr)
		}
		return
	}
	if !reflect.DeepEqual(normalize(fv), normalize(rv)) {
		t.Fatalf("%s: values differ on %x:\n fast: %+v\n  ref: %+v", sc.name, data, fv, rv)
	}
	if sc.message == nil {
		return
	}
	want, err := sc.message(rv)
	if err != nil || !bytes.Equal(msg, want) {
		t.Fatalf("%s: signed message differs (%v)", sc.name, err)
	}
}

// TestFastDecodersAgree compares both decoders on every single-bit flip,
// several byte substitutions and every truncation of each seed.
func TestFastDecodersAgree(t *testing.T) {
	for _, sc := range signedCodecs(t) {
		t.Run(sc.name, func(t *testing.T) {
			n := 0
			for _, seed := range sc.seeds {
				compareDecoders(t, sc, seed)
				for i := range seed {
					for bit := range 8 {
						m := bytes.Clone(seed)
						m[i] ^= 1 << bit
						compareDecoders(t, sc, m)
						n++
					}
					for _, v := range []byte{0x00, 0x17, 0x18, 0x1f, 0x40, 0x60, 0x80, 0xa0, 0xd8, 0xf6, 0xff} {
						m := bytes.Clone(seed)
						m[i] = v
						compareDecoders(t, sc, m)
						n++
					}
					compareDecoders(t, sc, seed[:i])
					n++
				}
			}
			t.Logf("%d inputs compared", n)
		})
	}
}

func TestFastDecoderRejectsInvalidValues(t *testing.T) {
	for _, tc := range badCases() {
		var split func([]byte) error
		switch {
		case bytes.HasPrefix([]byte(tc.name), []byte("signed head/")):
			split = func(b []byte) error { _, _, err := SplitSignedHead(b); return err }
		case bytes.HasPrefix([]byte(tc.name), []byte("signed ack/")):
			split = func(b []byte) error { _, _, err := SplitSignedAck(b); return err }
		case bytes.HasPrefix([]byte(tc.name), []byte("signed offer/")):
			split = func(b []byte) error { _, _, err := SplitSignedOffer(b); return err }
		case bytes.HasPrefix([]byte(tc.name), []byte("signed audit/")):
			split = func(b []byte) error { _, _, err := SplitSignedAudit(b); return err }
		case bytes.HasPrefix([]byte(tc.name), []byte("shard chunk/")):
			split = func(b []byte) error { _, err := DecodeShardChunk(b); return err }
		case bytes.HasPrefix([]byte(tc.name), []byte("member chunk/")):
			split = func(b []byte) error { _, err := DecodeMemberChunk(b); return err }
		default:
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			raw, err := tc.raw()
			if err != nil {
				t.Skip("not representable")
			}
			checkErr(t, "fast decode", split(raw), tc.want, tc.field)
		})
	}
}
