package pinset

import (
	"fmt"
	"testing"
)

func TestBloom(t *testing.T) {
	b := newBloom(0) // starts at bloomMinCap and must grow
	const n = 3 * bloomMinCap
	for i := range n {
		b.add(fmt.Sprint("in-", i))
	}
	if len(b.filters) < 2 {
		t.Fatalf("filter did not grow: %d filters", len(b.filters))
	}
	check := func(b *bloom) {
		t.Helper()
		for i := range n {
			if !b.mayHave(fmt.Sprint("in-", i)) {
				t.Fatalf("false negative for in-%d", i)
			}
		}
		fp := 0
		for i := range n {
			if b.mayHave(fmt.Sprint("out-", i)) {
				fp++
			}
		}
		if rate := float64(fp) / n; rate > 0.03 {
			t.Fatalf("false positive rate %.3f", rate)
		}
	}
	check(b)
	back, err := unmarshalBloom(b.marshal())
	if err != nil {
		t.Fatal(err)
	}
	check(back)
	for _, bad := range [][]byte{nil, {0}, {7, 0, 0, 1}, b.marshal()[:20]} {
		if _, err := unmarshalBloom(bad); err == nil {
			t.Fatalf("unmarshalBloom(%x) accepted", bad)
		}
	}
}
