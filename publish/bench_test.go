package publish

import (
	"testing"

	"github.com/ipfs/boxo/ipns"
)

// BenchmarkParseRecord measures full verification of one record.
func BenchmarkParseRecord(b *testing.B) {
	k := testKey(b, 1)
	name := testName(b, k)
	raw := build(b, k, testHead(b, 1), 7, t0, DefaultRecordConfig()).Raw
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecord(raw, name, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoxoValidateWithName is boxo alone (unmarshal + ValidateWithName),
// for comparison with ParseRecord's stricter checks. Its EOL check reads the
// wall clock, so the record is valid until 2224.
func BenchmarkBoxoValidateWithName(b *testing.B) {
	k := testKey(b, 1)
	name := testName(b, k)
	raw := build(b, k, testHead(b, 1), 7, t0, RecordConfig{Validity: farEOL}).Raw
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		rec, err := ipns.UnmarshalRecord(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := ipns.ValidateWithName(rec, name); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildRecord(b *testing.B) {
	k := testKey(b, 1)
	head := testHead(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildRecord(k, head, 7, t0, DefaultRecordConfig()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSelect8 chooses among 8 valid records.
func BenchmarkSelect8(b *testing.B) {
	k := testKey(b, 1)
	name := testName(b, k)
	cands := make([][]byte, 8)
	for i := range cands {
		cands[i] = build(b, k, testHead(b, i), uint64(i), t0, DefaultRecordConfig()).Raw
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Select(cands, name, t0); err != nil {
			b.Fatal(err)
		}
	}
}
