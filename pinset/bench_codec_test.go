package pinset

import "testing"

func BenchmarkEncodePin(b *testing.B) {
	p := goldenPin()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePin(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePin(b *testing.B) {
	v, _ := EncodePin(goldenPin())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePin(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePinBindnode(b *testing.B) {
	v, _ := EncodePin(goldenPin())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeStrict(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodePinBindnode is the bindnode encoder that EncodePin's
// hand-written one is held to (TestFastCodecMatchesBindnode).
func BenchmarkEncodePinBindnode(b *testing.B) {
	p := goldenPin()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeStrict(p); err != nil {
			b.Fatal(err)
		}
	}
}
