package dag

import "testing"

func benchCodec[T any](b *testing.B, v T, enc func(T) ([]byte, error), dec func([]byte) (T, error)) {
	data, err := enc(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := enc(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dec(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSignedHead(b *testing.B) {
	benchCodec(b, fixtureSignedHead(), EncodeSignedHead, DecodeSignedHead)
}

func BenchmarkSignedAck(b *testing.B) {
	benchCodec(b, fixtureSignedAck(), EncodeSignedAck, DecodeSignedAck)
}

// BenchmarkMemberChunk: a full chunk of realistic members.
func BenchmarkMemberChunk(b *testing.B) {
	benchCodec(b, MemberChunk{Items: members(MemberChunkSize)}, EncodeMemberChunk, DecodeMemberChunk)
}
