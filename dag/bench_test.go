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

// BenchmarkShardChunk: a full chunk of shards.
func BenchmarkShardChunk(b *testing.B) {
	c := ShardChunk{Items: make([]Shard, ShardChunkSize)}
	for i := range c.Items {
		c.Items[i] = Shard{ID: int64(i), Bytes: 1<<30 - int64(i)<<10, Pins: int64(1 + i%300), ReplMin: 2, ReplMax: 3}
	}
	benchCodec(b, c, EncodeShardChunk, DecodeShardChunk)
}
