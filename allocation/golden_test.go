package allocation

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file; if the change is intended, the algorithm version must change.\ngot:\n%s", path, got)
	}
}

// goldenInput is a small cluster with every feature: domains, an offline
// member, a zero pledge, per-shard replication and overrides.
func goldenInput() Input {
	in := Input{Algorithm: Algorithm, AlgVer: Version,
		Params: Params{ReplMin: 2, ReplMax: 3, ShardTarget: 4 << 20, Epsilon: DefaultEpsilon}}
	caps := []int64{40, 160, 80, 60, 120, 100, 0, 90, 45, 150, 70, 110}
	doms := []string{"eu", "us", "", "eu", "asia", "us", "", "asia", "eu", "", "us", "asia"}
	for i, c := range caps {
		m := Member{Peer: peerN(i), Capacity: c << 20, Domain: doms[i]}
		if i == 4 {
			seq := int64(12)
			m.Offline = &seq
		}
		in.Members = append(in.Members, m)
	}
	for i := range 48 {
		s := Shard{ID: int64(i), Bytes: int64(3<<20 + (i*7919)%(1<<20)), Pins: int64(1 + i%5)}
		if i%11 == 0 {
			s.ReplMin, s.ReplMax = 3, 4
		}
		in.Shards = append(in.Shards, s)
	}
	in.Overrides = []Override{
		{Shard: 5, Pin: [][]byte{peerN(8)}},
		{Shard: 9, Exclude: [][]byte{peerN(1), peerN(9)}},
		{Shard: 30, Pin: [][]byte{peerN(2)}, Exclude: [][]byte{peerN(5)}},
	}
	return in
}

// TestGoldenPlan pins a whole plan for every version: plan.txt is version
// 1's and was written before version 2 existed, so it also proves that
// version 1 maps are still computed bit for bit.
func TestGoldenPlan(t *testing.T) {
	for v := int64(1); v <= Version; v++ {
		in := goldenInput()
		in.AlgVer = v
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, in, p)
		name := "plan.txt"
		if v > 1 {
			name = fmt.Sprintf("plan_v%d.txt", v)
		}
		golden(t, name, planText(t, p))
	}
}

// TestGoldenScores pins the ranking function itself: these bits must be
// the same on every platform and in every release; every version so far
// shares them.
func TestGoldenScores(t *testing.T) {
	var b strings.Builder
	for i := range 4 {
		key := peerKey(peerN(i))
		fmt.Fprintf(&b, "peer %d key %016x:", i, key)
		for _, id := range []uint64{0, 1, 4095, 4096, 1 << 40} {
			fmt.Fprintf(&b, " %016x", scoreOf(key, id))
		}
		b.WriteByte('\n')
	}
	golden(t, "scores.txt", b.String())
}

// TestGoldenRepair pins version 3 plans on which its repair works: the
// demo's shards with the peer IDs of TestRepairRegression (a copy added
// after two moves in phase A), and the golden cluster with smaller
// pledges, larger shards and three members offline (moves for shards
// short of their maximum, and between live members for a shard short of
// live holders).
func TestGoldenRepair(t *testing.T) {
	var b strings.Builder
	in := repairCases[1].input(t, 3)
	tight := goldenInput()
	tight.AlgVer = 3
	caps := []int64{21756201, 112591904, 31913223, 37933321, 56725872, 63099254, 0, 40362557, 25669523, 101556971, 38405003, 68446362}
	bytes := []int64{5552506, 2217698, 4649082, 1456387, 6918913, 7049030, 6597283, 3927503, 2205328, 4487017, 7349263, 3733497,
		4133549, 1406653, 4147599, 7221026, 2849677, 4535317, 3728899, 1153972, 3639483, 4806186, 5684268, 3299761,
		4240777, 3235766, 2953233, 2890240, 4026017, 1816092, 2808477, 1771266, 2419588, 2463934, 4481300, 6494784,
		1748897, 7277815, 4657245, 1989407, 2929763, 5237145, 5879060, 1468719, 4319971, 4011660, 6198764, 6463225}
	for i := range tight.Members {
		tight.Members[i].Capacity = caps[i]
	}
	for i := range tight.Shards {
		tight.Shards[i].Bytes = bytes[i]
	}
	seq := int64(3)
	tight.Members[7].Offline, tight.Members[9].Offline = &seq, &seq
	for _, in := range []Input{in, tight} {
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, in, p)
		matchReference(t, in, p)
		b.WriteString(planText(t, p))
		b.WriteByte('\n')
	}
	golden(t, "repair_v3.txt", b.String())
}
