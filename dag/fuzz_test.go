package dag

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzDecode checks that decoding arbitrary bytes never panics, fails only
// with this package's sentinels, and that whatever decodes re-encodes to
// exactly the input (one encoding per value).
// For signed records and list chunks, also passes data to also (the
// comparison with the reference decoder).
func fuzzDecode[T any](f *testing.F, seeds []T, enc func(T) ([]byte, error), dec func([]byte) (T, error), also func(*testing.T, []byte)) {
	for _, s := range seeds {
		b, err := enc(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if also != nil {
			also(t, data)
		}
		v, err := dec(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownVersion) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		b, err := enc(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n  in %x\n out %x", data, b)
		}
	})
}

func FuzzDecodeSignedHead(f *testing.F) {
	fuzzDecode(f, []SignedHead{fixtureSignedHead(), fixtureGenesis()}, EncodeSignedHead, DecodeSignedHead, compareWith(f, "head"))
}

func FuzzDecodeSignedAck(f *testing.F) {
	fuzzDecode(f, []SignedAck{fixtureSignedAck(), maxSignedAck()}, EncodeSignedAck, DecodeSignedAck, compareWith(f, "ack"))
}

func FuzzDecodeSignedOffer(f *testing.F) {
	fuzzDecode(f, []SignedOffer{fixtureSignedOffer()}, EncodeSignedOffer, DecodeSignedOffer, compareWith(f, "offer"))
}

func FuzzDecodeSignedAudit(f *testing.F) {
	fuzzDecode(f, []SignedAudit{fixtureSignedAudit(), fixtureFailedAudit(), maxSignedAudit()},
		EncodeSignedAudit, DecodeSignedAudit, compareWith(f, "audit"))
}

func FuzzDecodeList(f *testing.F) {
	fuzzDecode(f, []List{fixtureList(), {}}, EncodeList, DecodeList, nil)
}

func FuzzDecodePinset(f *testing.F) {
	fuzzDecode(f, []Pinset{fixturePinset()}, EncodePinset, DecodePinset, nil)
}

func FuzzDecodeAllocation(f *testing.F) {
	fuzzDecode(f, []Allocation{fixtureAllocation()}, EncodeAllocation, DecodeAllocation, nil)
}

func FuzzDecodeMemberChunk(f *testing.F) {
	fuzzDecode(f, []MemberChunk{fixtureMemberChunk()}, EncodeMemberChunk, DecodeMemberChunk, compareWith(f, "member chunk"))
}

func FuzzDecodeShardChunk(f *testing.F) {
	fuzzDecode(f, []ShardChunk{fixtureShardChunk(), wideShardChunk()}, EncodeShardChunk, DecodeShardChunk, compareWith(f, "shard chunk"))
}

func FuzzDecodeLogChunk(f *testing.F) {
	fuzzDecode(f, []LogChunk{v1LogChunk(), fixtureLogChunkV2()}, EncodeLogChunk, DecodeLogChunk, nil)
}

func compareWith(f *testing.F, name string) func(*testing.T, []byte) {
	for _, sc := range signedCodecs(f) {
		if sc.name == name {
			return func(t *testing.T, data []byte) { compareDecoders(t, sc, data) }
		}
	}
	f.Fatalf("no signed codec %q", name)
	return nil
}
