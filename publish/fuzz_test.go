package publish

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
)

// fuzzSeeds are valid records and near-misses.
func fuzzSeeds(f *testing.F) [][]byte {
	k := testKey(f, 1)
	valid := build(f, k, testHead(f, 1), 7, t0, DefaultRecordConfig()).Raw
	rec, err := ipns.NewRecord(k, path.FromCid(testHead(f, 1)), 7, t0.Add(time.Hour), 0, ipns.WithV1Compatibility(false))
	if err != nil {
		f.Fatal(err)
	}
	v2, err := ipns.MarshalRecord(rec)
	if err != nil {
		f.Fatal(err)
	}
	c := baseCraft(f, k)
	c.v1Sig = make([]byte, 64)
	golden, err := os.ReadFile(filepath.Join("testdata", RecordFileName(testName(f, k))))
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{
		valid, v2, c.marshal(f), golden,
		valid[:len(valid)/2], nil, []byte{0x0a}, []byte("garbage"),
		append(bytes.Clone(valid), 0x52, 0x01, 0x00),
	}
}

// checkParsed asserts what must hold for any ParseRecord result.
func checkParsed(t *testing.T, data []byte, r Record, err error) {
	t.Helper()
	if err != nil {
		if !classified(err) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	if !bytes.Equal(r.Raw, data) {
		t.Fatal("accepted record's Raw differs from its input")
	}
	if r.Seq > math.MaxInt64 || r.TTL < 0 || r.EOL.Before(t0) {
		t.Fatalf("accepted record out of range: %+v", r)
	}
	if err := CheckHead(r, r.Head, r.Seq); err != nil {
		t.Fatalf("CheckHead on its own head: %v", err)
	}
	if err := checkHeadCID(r.Head); err != nil {
		t.Fatalf("accepted a head CID that BuildRecord refuses: %v", err)
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	name := testName(f, testKey(f, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data, name, t0)
		checkParsed(t, data, r, err)
	})
}

func FuzzReadRecordFile(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add(make([]byte, ipns.MaxRecordSize+1))
	name := testName(f, testKey(f, 1))
	dir := f.TempDir()
	p := filepath.Join(dir, "fuzz.ipns")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := ReadRecordFile(p, name, t0)
		checkParsed(t, data, r, err)
	})
}
