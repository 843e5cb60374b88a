package audit

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

func TestSample(t *testing.T) {
	t.Parallel()
	a, b, c := dag.CID([]byte("a")), dag.CID([]byte("b")), dag.CID([]byte("c"))
	pins := []PinRef{{a, 100}, {b, 300}, {c, 0}}
	counts := map[cid.Cid]int{}
	got, err := Sample(pins, MaxSamples, newSeeded(1))
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(0); seed < 100; seed++ {
		s, err := Sample(pins, MaxSamples, newSeeded(seed))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s {
			counts[r]++
		}
	}
	t.Logf("draws: a %d, b %d, c %d (weights 100, 300, 1)", counts[a], counts[b], counts[c])
	if r := float64(counts[b]) / float64(counts[a]); r < 2.7 || r > 3.3 {
		t.Fatalf("b/a = %.2f, want about 3", r)
	}
	// The order of the pins does not matter.
	again, _ := Sample([]PinRef{pins[2], pins[1], pins[0]}, MaxSamples, newSeeded(1))
	for i := range got {
		if got[i] != again[i] {
			t.Fatal("sample depends on the order of the pins")
		}
	}
	for _, tc := range []struct {
		name string
		pins []PinRef
		k    int
	}{
		{"no pins", nil, 1},
		{"k 0", pins, 0},
		{"k over max", pins, MaxSamples + 1},
		{"negative size", []PinRef{{a, -1}}, 1},
		{"undefined cid", []PinRef{{cid.Undef, 1}}, 1},
		{"overflow", []PinRef{{a, math.MaxInt64}, {b, math.MaxInt64}, {c, math.MaxInt64}}, 1},
	} {
		if _, err := Sample(tc.pins, tc.k, newSeeded(1)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := Sample(pins, 2, bytes.NewReader(make([]byte, 9))); err == nil {
		t.Error("short randomness accepted")
	}
}

func TestDetection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f        float64
		s, r     int
		want     float64
		rounds99 int
	}{
		{0.1, 1, 44, 1 - math.Pow(0.9, 44), 44},
		{0.1, 4, 11, 1 - math.Pow(0.9, 44), 11},
		{0.1, 8, 6, 1 - math.Pow(0.9, 48), 6},
		{0.01, 4, 115, 1 - math.Pow(0.99, 460), 115},
		{0, 4, 10, 0, 0},
		{1, 4, 1, 1, 1},
	} {
		got := Detection(tc.f, tc.s, tc.r)
		if math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Detection(%v, %d, %d) = %v, want %v", tc.f, tc.s, tc.r, got, tc.want)
		}
		if r := RoundsFor(tc.f, tc.s, 0.99); r != tc.rounds99 {
			t.Errorf("RoundsFor(%v, %d, 0.99) = %d, want %d", tc.f, tc.s, r, tc.rounds99)
		}
		if tc.rounds99 > 1 && Detection(tc.f, tc.s, tc.rounds99-1) >= 0.99 {
			t.Errorf("RoundsFor(%v, %d) is not the fewest", tc.f, tc.s)
		}
	}
}

// TestDetectionMatchesSimulation: over many seeds, the share of holders
// missing 10% of a file's leaves that are caught within r rounds of k
// paths is at least Detection(0.1, k, r) minus sampling noise. Pure: the
// holder is a block store with the leaves deleted.
func TestDetectionMatchesSimulation(t *testing.T) {
	t.Parallel()
	bs := memBlocks()
	root := fileDAG(t, bs, 20, 200<<10, 1<<10, 16) // 200 leaves of 1 KiB
	size, all := dagSize(t, bs, root.Cid())
	var leaves []cid.Cid
	for _, c := range all {
		if c.Prefix().Codec == codecRaw {
			leaves = append(leaves, c)
		}
	}
	pins := []PinRef{{root.Cid(), size}}
	const k, trials = 4, 300
	caughtBy := make([]int, 8) // caughtBy[r]: trials caught within r+1 rounds
	for trial := uint64(0); trial < trials; trial++ {
		gone := map[cid.Cid]bool{}
		rnd := newSeeded(1000 + trial)
		for len(gone) < len(leaves)/10 {
			var b [2]byte
			rnd.Read(b[:])
			gone[leaves[(int(b[0])<<8|int(b[1]))%len(leaves)]] = true
		}
		holder := deleting{bs, gone}
		for r := range caughtBy {
			ch := challengeFor(t, pins, k, trial*100+uint64(r))
			if _, err := Verify(ch, answer(t, holder, ch)); err != nil {
				for j := r; j < len(caughtBy); j++ {
					caughtBy[j]++
				}
				break
			}
		}
	}
	for r, n := range caughtBy {
		got, want := float64(n)/trials, Detection(0.1, k, r+1)
		noise := 3 * math.Sqrt(want*(1-want)/trials)
		t.Logf("rounds %d: caught %.3f, predicted at least %.3f", r+1, got, want)
		if got < want-noise-0.01 {
			t.Fatalf("rounds %d: caught %.3f < predicted %.3f - noise %.3f", r+1, got, want, noise)
		}
	}
}

func TestChallengeCodec(t *testing.T) {
	t.Parallel()
	ch := challengeFor(t, []PinRef{{dag.CID([]byte("a")), 5}, {dag.CID([]byte("b")), 7}}, 5, 9)
	b, err := ch.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeChallenge(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Encode()
	if !bytes.Equal(b, b2) || got.Nonce != ch.Nonce || len(got.Roots) != 5 || got.Cluster != ch.Cluster {
		t.Fatal("round trip changed the challenge")
	}
	full := ch
	full.Roots = make([]cid.Cid, MaxSamples)
	for i := range full.Roots {
		full.Roots[i] = ch.Roots[0]
	}
	fb, err := full.Encode()
	if err != nil || len(fb) > MaxChallengeSize {
		t.Fatalf("a challenge of %d roots is %d bytes (%v), limit %d", MaxSamples, len(fb), err, MaxChallengeSize)
	}
	t.Logf("challenge of %d roots: %d bytes; of %d roots: %d bytes", len(ch.Roots), len(b), MaxSamples, len(fb))
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"trailing byte", append(bytes.Clone(b), 0), ErrMalformed},
		{"truncated", b[:len(b)-1], ErrMalformed},
		{"over limit", make([]byte, MaxChallengeSize+1), ErrTooLarge},
		{"not a map", []byte{0x01}, ErrMalformed},
		{"short nonce", bytes.Replace(b, append([]byte{0x58, 0x20}, ch.Nonce[:]...), append([]byte{0x58, 0x1f}, ch.Nonce[:31]...), 1), ErrMalformed},
	} {
		if _, err := DecodeChallenge(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	bad := ch
	bad.Head = cid.NewCidV1(cid.Raw, ch.Roots[0].Hash())
	if _, err := bad.Encode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("challenge with a bad head encoded: %v", err)
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	ch := challengeFor(t, []PinRef{{dag.CID([]byte("a")), 5}}, 2, 1)
	auditor, holder := testCluster(t), peer.ID(append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, bytes.Repeat([]byte{9}, 32)...))
	now := time.UnixMilli(1_700_000_000_000)
	pass := ch.Record(auditor, holder, 7, 2, nil, now)
	if _, err := dag.AuditSigningBytes(pass); err != nil || pass.Result != dag.ResultPass || pass.Time != now.UnixMilli() {
		t.Fatalf("pass record: %+v, %v", pass, err)
	}
	long := errors.New(strings.Repeat("é", 300) + "\x1b[2J\n")
	fail := ch.Record(auditor, holder, 7, 1, long, now)
	if _, err := dag.AuditSigningBytes(fail); err != nil || fail.Result != dag.ResultFail || len(fail.Reason) > dag.MaxReasonLen {
		t.Fatalf("fail record: %q, %v", fail.Reason, err)
	}
}
