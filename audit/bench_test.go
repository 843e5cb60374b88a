package audit

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkAudit measures one audit of DefaultSamples paths through a
// UnixFS file (balanced, 1024 links per node, raw leaves) of the given
// leaf size: the holder's Answer from an in-memory store, the wire
// encoding, and the auditor's decode and Verify. Reported: wire-B/audit,
// the bytes the holder sends; ns/op and B/op are the CPU and allocations
// of both sides together. The file has 32 leaves under one root node, so
// a path is the root (about 1.5 KB) and a leaf; each further level of a
// large file adds one node of up to 1024 links (about 45 KB).
func BenchmarkAudit(b *testing.B) {
	for _, leaf := range []int64{256 << 10, 1 << 20} {
		for _, k := range []int{1, DefaultSamples, 8} {
			b.Run(fmt.Sprintf("leaf=%dKiB/k=%d", leaf>>10, k), func(b *testing.B) {
				bs := memBlocks()
				root := fileDAG(b, bs, 1, 32*leaf, leaf, 1024)
				size, _ := dagSize(b, bs, root.Cid())
				pins := []PinRef{{root.Cid(), size}}
				ctx := context.Background()
				var wire int64
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					ch := challengeFor(b, pins, k, uint64(i))
					resp, err := Answer(ctx, bs, ch, int64(k)*4*MaxBlockSize)
					if err != nil {
						b.Fatal(err)
					}
					var buf bytes.Buffer
					if err := WriteResponse(&buf, resp); err != nil {
						b.Fatal(err)
					}
					wire += int64(buf.Len())
					got, err := ReadResponse(&buf, len(ch.Roots), int64(k)*4*MaxBlockSize)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := Verify(ch, got); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(wire)/float64(b.N), "wire-B/audit")
			})
		}
	}
}

// BenchmarkVerify is the auditor's side alone (decode and Verify).
func BenchmarkVerify(b *testing.B) {
	bs := memBlocks()
	root := fileDAG(b, bs, 1, 32<<20, 1<<20, 1024)
	size, _ := dagSize(b, bs, root.Cid())
	ch := challengeFor(b, []PinRef{{root.Cid(), size}}, DefaultSamples, 1)
	resp := answer(b, bs, ch)
	var buf bytes.Buffer
	_ = WriteResponse(&buf, resp)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := ReadResponse(bytes.NewReader(data), len(ch.Roots), DefaultMaxResponse)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Verify(ch, got); err != nil {
			b.Fatal(err)
		}
	}
}
