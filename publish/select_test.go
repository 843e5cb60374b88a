package publish

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
)

// refBest is the reference for Select: sort the valid records by
// (sequence, EOL, bytes), all descending, and take the first.
func refBest(valid []Record) Record {
	s := slices.Clone(valid)
	slices.SortFunc(s, func(a, b Record) int {
		switch {
		case a.Seq != b.Seq:
			if a.Seq > b.Seq {
				return -1
			}
			return 1
		case !a.EOL.Equal(b.EOL):
			if a.EOL.After(b.EOL) {
				return -1
			}
			return 1
		default:
			return -bytes.Compare(a.Raw, b.Raw)
		}
	})
	return s[0]
}

// permutations calls f with every permutation of n indices (Heap's algorithm).
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var gen func(k int)
	gen = func(k int) {
		if k == 1 {
			f(p)
			return
		}
		for i := range k {
			gen(k - 1)
			if k%2 == 0 {
				p[i], p[k-1] = p[k-1], p[i]
			} else {
				p[0], p[k-1] = p[k-1], p[0]
			}
		}
	}
	gen(n)
}

func TestSelectEveryPermutation(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	name := testName(t, k1)
	head := testHead(t, 1)
	cfg := func(v, ttl time.Duration) RecordConfig { return RecordConfig{Validity: v, TTL: ttl} }
	a := build(t, k1, head, 5, t0, cfg(48*time.Hour, time.Minute))
	b := build(t, k1, head, 7, t0, cfg(24*time.Hour, time.Minute))
	c := build(t, k1, head, 7, t0, cfg(48*time.Hour, time.Minute))
	d := build(t, k1, head, 7, t0, cfg(48*time.Hour, 2*time.Minute)) // same seq and EOL as c
	expired := build(t, k1, head, 9, t0.Add(-72*time.Hour), cfg(48*time.Hour, time.Minute))
	foreign := build(t, k2, head, 10, t0, cfg(48*time.Hour, time.Minute))
	in := [][]byte{a.Raw, b.Raw, c.Raw, d.Raw, expired.Raw, foreign.Raw}
	want := refBest([]Record{a, b, c, d})
	if !bytes.Equal(want.Raw, c.Raw) && !bytes.Equal(want.Raw, d.Raw) {
		t.Fatal("reference picked neither of the two seq-7 latest-EOL records")
	}

	n := 0
	permutations(len(in), func(p []int) {
		n++
		cands := make([][]byte, len(p))
		for i, j := range p {
			cands[i] = in[j]
		}
		got, rejected, err := Select(cands, name, t0)
		if err != nil {
			t.Fatalf("permutation %v: %v", p, err)
		}
		if !bytes.Equal(got.Raw, want.Raw) {
			t.Fatalf("permutation %v: picked seq %d EOL %s TTL %s, want seq %d EOL %s TTL %s",
				p, got.Seq, got.EOL, got.TTL, want.Seq, want.EOL, want.TTL)
		}
		if len(rejected) != 2 {
			t.Fatalf("permutation %v: %d rejections, want 2", p, len(rejected))
		}
		for _, r := range rejected {
			switch {
			case bytes.Equal(cands[r.Index], expired.Raw):
				if !errors.Is(r.Err, ErrExpired) {
					t.Fatalf("expired record rejected with %v", r.Err)
				}
			case bytes.Equal(cands[r.Index], foreign.Raw):
				if !errors.Is(r.Err, ErrBadSignature) {
					t.Fatalf("foreign record rejected with %v", r.Err)
				}
			default:
				t.Fatalf("permutation %v: valid candidate %d rejected: %v", p, r.Index, r.Err)
			}
		}
		if !slices.IsSortedFunc(rejected, func(x, y Rejection) int { return x.Index - y.Index }) {
			t.Fatalf("rejections not in input order: %v", rejected)
		}
	})
	if n != 720 {
		t.Fatalf("%d permutations, want 720", n)
	}
}

func TestSelectProperty(t *testing.T) {
	const seed = 1
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	k1, k2 := testKey(t, 1), testKey(t, 2)
	name := testName(t, k1)

	var pool []Record // valid ones
	for seq := uint64(1); seq <= 3; seq++ {
		for _, v := range []time.Duration{time.Hour, 2 * time.Hour} {
			for _, ttl := range []time.Duration{0, time.Minute} {
				pool = append(pool, build(t, k1, testHead(t, int(seq)), seq, t0, RecordConfig{Validity: v, TTL: ttl}))
			}
		}
	}
	invalid := [][]byte{
		build(t, k1, testHead(t, 9), 9, t0.Add(-3*time.Hour), RecordConfig{Validity: time.Hour}).Raw, // expired
		build(t, k2, testHead(t, 9), 9, t0, DefaultRecordConfig()).Raw,                               // foreign
		[]byte("garbage"),
		nil,
	}
	var boxoSel ipns.Validator

	for iter := range 300 {
		var cands [][]byte
		var valid []Record
		nInvalid := 0
		for range 1 + rng.IntN(8) {
			if rng.IntN(4) == 0 {
				cands = append(cands, invalid[rng.IntN(len(invalid))])
				nInvalid++
				continue
			}
			r := pool[rng.IntN(len(pool))]
			cands = append(cands, r.Raw)
			valid = append(valid, r)
		}
		got, rejected, err := Select(cands, name, t0)
		if len(rejected) != nInvalid {
			t.Fatalf("iter %d: %d rejections, want %d", iter, len(rejected), nInvalid)
		}
		for _, r := range rejected {
			if !classified(r.Err) {
				t.Fatalf("iter %d: unclassified rejection %v", iter, r.Err)
			}
		}
		if len(valid) == 0 {
			if !errors.Is(err, ErrNoRecord) {
				t.Fatalf("iter %d: no valid candidate, error %v, want ErrNoRecord", iter, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		if want := refBest(valid); !bytes.Equal(got.Raw, want.Raw) {
			t.Fatalf("iter %d: Select picked seq %d EOL %s, reference seq %d EOL %s", iter, got.Seq, got.EOL, want.Seq, want.EOL)
		}
		// Reversed input, same answer.
		rev := slices.Clone(cands)
		slices.Reverse(rev)
		if again, _, _ := Select(rev, name, t0); !bytes.Equal(again.Raw, got.Raw) {
			t.Fatalf("iter %d: reversed input changes the choice", iter)
		}
		// boxo's own selector (no validation, same ordering rules) agrees.
		raws := make([][]byte, len(valid))
		for i, r := range valid {
			raws[i] = r.Raw
		}
		i, err := boxoSel.Select("", raws)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raws[i], got.Raw) {
			t.Fatalf("iter %d: boxo's Validator.Select disagrees", iter)
		}
	}
}

func TestSelectNone(t *testing.T) {
	k2 := testKey(t, 2)
	name := testName(t, testKey(t, 1))
	cands := [][]byte{build(t, k2, testHead(t, 1), 1, t0, DefaultRecordConfig()).Raw, []byte("x"), nil}
	_, rejected, err := Select(cands, name, t0)
	if !errors.Is(err, ErrNoRecord) {
		t.Fatalf("error %v, want ErrNoRecord", err)
	}
	if len(rejected) != 3 || rejected[0].Index != 0 || rejected[1].Index != 1 || rejected[2].Index != 2 {
		t.Fatalf("rejections %v, want indices 0, 1, 2", rejected)
	}
	if !errors.Is(rejected[0].Err, ErrBadSignature) || !errors.Is(rejected[1].Err, ErrMalformed) || !errors.Is(rejected[2].Err, ErrMalformed) {
		t.Fatalf("rejection reasons %v", rejected)
	}
	if _, _, err := Select(nil, name, t0); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Select(nil) error %v, want ErrNoRecord", err)
	}
}

func TestCompare(t *testing.T) {
	k := testKey(t, 1)
	head := testHead(t, 1)
	recs := []Record{
		build(t, k, head, 1, t0, DefaultRecordConfig()),
		build(t, k, head, 2, t0, RecordConfig{Validity: time.Hour}),
		build(t, k, head, 2, t0, RecordConfig{Validity: 2 * time.Hour}),
		build(t, k, head, 2, t0, RecordConfig{Validity: 2 * time.Hour, TTL: time.Second}),
	}
	for i, a := range recs {
		if Compare(a, a) != 0 {
			t.Errorf("Compare(r%d, r%d) != 0", i, i)
		}
		for j, b := range recs {
			if Compare(a, b) != -Compare(b, a) {
				t.Errorf("Compare not antisymmetric for r%d, r%d", i, j)
			}
			if i != j && Compare(a, b) == 0 {
				t.Errorf("Compare(r%d, r%d) = 0 for different records", i, j)
			}
		}
	}
	if Compare(recs[1], recs[0]) != 1 || Compare(recs[2], recs[1]) != 1 {
		t.Error("higher sequence, then later EOL, must win")
	}
}
