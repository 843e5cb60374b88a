package allocation

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// reference is a slow, direct implementation of the algorithm's
// definition (every version): every pass sorts every (shard, member) pair
// of the full ranking and accepts pairs in order; version 2's trim scans
// every shard for each member over its bound; version 3's repair
// (referenceRepair) sorts each shard's full ranking and finds a member's
// shards by scanning every shard. Compute must agree with it exactly.
func reference(in Input) (map[int64][][]byte, error) {
	out, _, err := referenceBudget(in)
	return out, err
}

// referenceBudget is reference, and also returns what is left of the
// version 3 repair's budget (negative once spent).
func referenceBudget(in Input) (map[int64][][]byte, int64, error) {
	ms, shs, domains, _, err := canon(in)
	if err != nil {
		return nil, 0, err
	}
	load := make([]int64, len(ms))
	hold := make([][]int32, len(shs))
	for si, s := range shs {
		for _, m := range s.pinned() {
			if load[m]+s.bytes <= ms[m].cap {
				hold[si] = append(hold[si], m)
				load[m] += s.bytes
			}
		}
	}
	var capTotal, lmin, lmax int64
	for _, m := range ms {
		capTotal += m.cap
	}
	for _, s := range shs {
		lmin += s.bytes * int64(s.min)
		lmax += s.bytes * int64(s.max)
	}
	hard := make([]int64, len(ms))
	for i, m := range ms {
		hard[i] = m.cap
	}
	type pair struct {
		s, m int32
		e    uint64
	}
	var pairs []pair
	for si, s := range shs {
		for mi, m := range ms {
			if m.cap > 0 {
				pairs = append(pairs, pair{int32(si), int32(mi), scoreOf(m.key, uint64(s.id))})
			}
		}
	}
	sort.Slice(pairs, func(a, b int) bool {
		pa, pb := pairs[a], pairs[b]
		if c := lessScore(pa.e, uint64(ms[pa.m].cap), pb.e, uint64(ms[pb.m].cap)); c != 0 {
			return c < 0
		}
		if pa.m != pb.m {
			return pa.m < pb.m
		}
		return pa.s < pb.s
	})
	liveCount := func(s int) int32 {
		n := int32(0)
		for _, h := range hold[s] {
			if !ms[h].offline {
				n++
			}
		}
		return n
	}
	var frozen []bool // version 2: members trimmed in the last trim
	run := func(caps []int64, want func(shard) int32, strict, live bool) {
		for _, p := range pairs {
			s := &shs[p.s]
			have := int32(len(hold[p.s]))
			if live {
				have = liveCount(int(p.s))
			}
			if have >= want(*s) {
				continue
			}
			if load[p.m]+s.bytes > caps[p.m] || (live && ms[p.m].offline) || s.excluded(p.m) || (frozen != nil && frozen[p.m]) {
				continue
			}
			ok := true
			for _, h := range hold[p.s] {
				if h == p.m || (strict && ms[p.m].domain >= 0 && ms[h].domain == ms[p.m].domain) {
					ok = false
				}
			}
			if ok {
				hold[p.s] = append(hold[p.s], p.m)
				load[p.m] += s.bytes
			}
		}
	}
	// trim: each member over caps, in index order, gives up its worst-scored
	// unpinned shards (equal scores: higher shard first) until it fits,
	// never taking a shard below floor holders; it is then frozen until the
	// pledge-bound passes.
	trim := func(caps []int64, floor func(shard) int32) {
		frozen = make([]bool, len(ms))
		for mi := range ms {
			m := int32(mi)
			if load[m] <= caps[m] {
				continue
			}
			frozen[m] = true
			var mine []int32
			for si := range shs {
				if slices.Contains(hold[si], m) && !slices.Contains(shs[si].pinned(), m) {
					mine = append(mine, int32(si))
				}
			}
			sort.Slice(mine, func(a, b int) bool {
				ea, eb := scoreOf(ms[m].key, uint64(shs[mine[a]].id)), scoreOf(ms[m].key, uint64(shs[mine[b]].id))
				if ea != eb {
					return ea > eb
				}
				return mine[a] > mine[b]
			})
			for _, si := range mine {
				if load[m] <= caps[m] {
					break
				}
				if int32(len(hold[si])) <= floor(shs[si]) {
					continue
				}
				hold[si] = slices.DeleteFunc(hold[si], func(h int32) bool { return h == m })
				load[m] -= shs[si].bytes
			}
		}
	}
	capA := balanceCaps(ms, lmin, capTotal, in.Params.Epsilon)
	capB := balanceCaps(ms, lmax, capTotal, in.Params.Epsilon)
	strictOpts := []bool{false}
	if len(domains) > 0 {
		strictOpts = []bool{true, false}
	}
	repairAll, budget := referenceRepair(ms, shs, hold, load, strictOpts)
	minW := func(s shard) int32 { return s.min }
	maxW := func(s shard) int32 { return s.max }
	for phase, ph := range []struct {
		caps  []int64
		want  func(shard) int32
		floor func(shard) int32
	}{
		{capA, minW, func(shard) int32 { return 0 }},
		{capB, maxW, minW},
	} {
		if in.AlgVer >= 2 {
			for _, strict := range strictOpts {
				run(hard, ph.want, strict, false)
			}
			trim(ph.caps, ph.floor)
		}
		for _, strict := range strictOpts {
			run(ph.caps, ph.want, strict, false)
		}
		frozen = nil
		for _, strict := range strictOpts {
			run(hard, ph.want, strict, false)
		}
		if in.AlgVer >= 3 {
			changed := repairAll(minW, false)
			if phase == 1 && repairAll(maxW, false) {
				changed = true
			}
			if changed {
				for _, strict := range strictOpts {
					run(hard, ph.want, strict, false)
				}
			}
		}
	}
	for _, caps := range [][]int64{capB, hard} {
		for _, strict := range strictOpts {
			run(caps, minW, strict, true)
		}
	}
	if in.AlgVer >= 3 && repairAll(minW, true) {
		for _, strict := range strictOpts {
			run(hard, minW, strict, true)
		}
		for _, strict := range strictOpts {
			run(hard, maxW, strict, false)
		}
	}
	out := map[int64][][]byte{}
	for si, s := range shs {
		for _, m := range hold[si] {
			out[s.id] = append(out[s.id], ms[m].peer)
		}
	}
	return out, *budget, nil
}

func TestComputeMatchesReference(t *testing.T) {
	const seed = 20240611
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	for i := range 300 {
		gc := randomGen(rng)
		in := genInput(rng, gc)
		in.AlgVer = int64(1 + i%Version) // every version the package computes
		p, err := Compute(in)
		if err != nil {
			t.Fatalf("case %d %+v: %v", i, gc, err)
		}
		want, err := reference(in)
		if err != nil {
			t.Fatal(err)
		}
		for k := range p.Len() {
			sh := p.Shard(k)
			if !slices.EqualFunc(sh.Holders, want[sh.ID], func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Fatalf("case %d %+v: shard %d holders %q, reference %q", i, gc, sh.ID, sh.Holders, want[sh.ID])
			}
		}
		checkInvariants(t, in, p)
	}
}

// shuffled returns a copy of in with its members, shards and overrides in
// another order.
func shuffled(rng *rand.Rand, in Input) Input {
	sh := in
	sh.Members = slices.Clone(in.Members)
	sh.Shards = slices.Clone(in.Shards)
	sh.Overrides = slices.Clone(in.Overrides)
	rng.Shuffle(len(sh.Members), func(a, b int) { sh.Members[a], sh.Members[b] = sh.Members[b], sh.Members[a] })
	rng.Shuffle(len(sh.Shards), func(a, b int) { sh.Shards[a], sh.Shards[b] = sh.Shards[b], sh.Shards[a] })
	rng.Shuffle(len(sh.Overrides), func(a, b int) { sh.Overrides[a], sh.Overrides[b] = sh.Overrides[b], sh.Overrides[a] })
	return sh
}

func TestComputeOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 50 {
		in := genInput(rng, randomGen(rng))
		p1, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		sh := shuffled(rng, in)
		p2, err := Compute(sh)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := planText(t, p1), planText(t, p2); a != b {
			t.Fatalf("case %d: shuffled input gives another plan:\n%s\nvs\n%s", i, a, b)
		}
	}
}

func TestComputeErrors(t *testing.T) {
	ok := Input{Algorithm: Algorithm, AlgVer: Version, Params: DefaultParams(),
		Members: []Member{{Peer: []byte("a"), Capacity: 10}}, Shards: []Shard{{ID: 1, Bytes: 1}}}
	tests := []struct {
		name string
		edit func(*Input)
		want error
	}{
		{"algorithm", func(in *Input) { in.Algorithm = "x" }, ErrUnknownAlgorithm},
		{"version 0", func(in *Input) { in.AlgVer = 0 }, ErrUnknownAlgorithm},
		{"version next", func(in *Input) { in.AlgVer = Version + 1 }, ErrUnknownAlgorithm},
		{"repl min", func(in *Input) { in.Params.ReplMin = 0 }, ErrInvalidParams},
		{"repl max", func(in *Input) { in.Params.ReplMax = 1; in.Params.ReplMin = 2 }, ErrInvalidParams},
		{"epsilon", func(in *Input) { in.Params.Epsilon = -1 }, ErrInvalidParams},
		{"target", func(in *Input) { in.Params.ShardTarget = 0 }, ErrInvalidParams},
		{"empty peer", func(in *Input) { in.Members = append(in.Members, Member{Capacity: 1}) }, ErrInvalidMember},
		{"dup peer", func(in *Input) { in.Members = append(in.Members, in.Members[0]) }, ErrInvalidMember},
		{"neg capacity", func(in *Input) { in.Members[0].Capacity = -1 }, ErrInvalidMember},
		{"capacity sum", func(in *Input) {
			in.Members = []Member{{Peer: []byte("a"), Capacity: MaxCapacity}, {Peer: []byte("b"), Capacity: 1}}
		}, ErrInvalidMember},
		{"neg shard", func(in *Input) { in.Shards[0].ID = -1 }, ErrInvalidShard},
		{"neg bytes", func(in *Input) { in.Shards[0].Bytes = -1 }, ErrInvalidShard},
		{"dup shard", func(in *Input) { in.Shards = append(in.Shards, in.Shards[0]) }, ErrInvalidShard},
		{"shard repl", func(in *Input) { in.Shards[0].ReplMin = 3; in.Shards[0].ReplMax = 2 }, ErrInvalidShard},
		{"dup override", func(in *Input) { in.Overrides = []Override{{Shard: 1}, {Shard: 1}} }, ErrInvalidOverride},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			in.Members = slices.Clone(ok.Members)
			in.Shards = slices.Clone(ok.Shards)
			tt.edit(&in)
			if _, err := Compute(in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Compute(ok); err != nil {
		t.Fatalf("valid input: %v", err)
	}
}

func TestOverrides(t *testing.T) {
	in := Input{Algorithm: Algorithm, AlgVer: Version, Params: Params{ReplMin: 1, ReplMax: 2, ShardTarget: 100, Epsilon: DefaultEpsilon}}
	for i := range 6 {
		in.Members = append(in.Members, Member{Peer: peerN(i), Capacity: 1000})
	}
	in.Members[5].Capacity = 10
	for i := range 10 {
		in.Shards = append(in.Shards, Shard{ID: int64(i), Bytes: 50})
	}
	in.Overrides = []Override{
		{Shard: 0, Pin: [][]byte{peerN(3), peerN(4), peerN(0)}},                         // pinned beyond max
		{Shard: 1, Exclude: [][]byte{peerN(0), peerN(1), peerN(2), peerN(3), peerN(4)}}, // only 5 left: too small
		{Shard: 2, Pin: [][]byte{peerN(5)}},                                             // no capacity
		{Shard: 3, Pin: [][]byte{peerN(1)}, Exclude: [][]byte{peerN(1)}},                // both
		{Shard: 4, Pin: [][]byte{[]byte("stranger")}},                                   // unknown peer
		{Shard: 99, Exclude: [][]byte{peerN(1)}},                                        // unknown shard
	}
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, in, p)
	if h, _ := p.Holders(0); len(h) != 3 || string(h[0]) != string(peerN(3)) || string(h[2]) != string(peerN(0)) {
		t.Errorf("shard 0 holders %q, want the three pinned peers in order", h)
	}
	if h, _ := p.Holders(1); len(h) != 0 {
		t.Errorf("shard 1 holders %q, want none", h)
	}
	short := p.Shortfalls()
	if len(short) != 1 || short[0].Shard != 1 || short[0].Reason != ReasonOverrides {
		t.Errorf("shortfalls %+v, want shard 1 for overrides", short)
	}
	var errs []error
	for _, pr := range p.Problems() {
		errs = append(errs, pr.Err)
	}
	want := []error{ErrUnknownShard, ErrPinCapacity, ErrPinExcluded, ErrUnknownPeer}
	for _, w := range want {
		if !slices.Contains(errs, w) {
			t.Errorf("problems %v lack %v", errs, w)
		}
	}
}

func TestShortfallReasons(t *testing.T) {
	mk := func(caps ...int64) Input {
		in := Input{Algorithm: Algorithm, AlgVer: Version, Params: Params{ReplMin: 2, ReplMax: 2, ShardTarget: 100, Epsilon: DefaultEpsilon}}
		for i, c := range caps {
			in.Members = append(in.Members, Member{Peer: peerN(i), Capacity: c})
		}
		return in
	}
	tests := []struct {
		name   string
		in     Input
		shards []Shard
		want   Reason
	}{
		{"one member", mk(1000), []Shard{{ID: 0, Bytes: 10}}, ReasonMembers},
		{"too big", mk(1000, 50), []Shard{{ID: 0, Bytes: 100}}, ReasonMembers},
		{"capacity", mk(100, 100, 100), []Shard{{ID: 0, Bytes: 90}, {ID: 1, Bytes: 90}}, ReasonCapacity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Shards = tt.shards
			p, err := Compute(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, tt.in, p)
			s := p.Shortfalls()
			if len(s) == 0 || s[0].Reason != tt.want {
				t.Fatalf("shortfalls %+v, want reason %v", s, tt.want)
			}
		})
	}
}

// A member going offline moves nothing while each of its shards keeps at
// least min live holders; a shard that falls below min gains exactly the
// holders it lacks.
func TestOfflineMargin(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	in := genInput(rng, genConfig{members: 40, shards: 2000, fill: 0.6, replMin: 2, replMax: 3})
	for _, replMin := range []int64{2, 3} {
		in.Params.ReplMin = replMin
		base, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(base.Shortfalls()) != 0 {
			t.Fatalf("base plan has shortfalls: %v", base.Shortfalls())
		}
		for _, victim := range []int{0, 17, 39} {
			off := in
			off.Members = slices.Clone(in.Members)
			seq := int64(5)
			off.Members[victim].Offline = &seq
			p, err := Compute(off)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, off, p)
			var want int64
			for k := range base.Len() {
				sh := base.Shard(k)
				if slices.ContainsFunc(sh.Holders, func(h []byte) bool { return string(h) == string(peerN(victim)) }) &&
					len(sh.Holders)-1 < sh.Min {
					want += sh.Bytes
				}
			}
			if m := Moved(base, p); m != want {
				t.Errorf("repl min %d, member %d offline: moved %d bytes, want %d", replMin, victim, m, want)
			}
			if replMin == 2 && want != 0 && len(p.Shortfalls()) == 0 {
				// only shards whose own bounds are below the defaults can drop under min here
				t.Logf("repl min 2, member %d: %d bytes below min after going offline", victim, want)
			}
		}
	}
}

func TestDomainsDistinct(t *testing.T) {
	in := Input{Algorithm: Algorithm, AlgVer: Version, Params: Params{ReplMin: 3, ReplMax: 3, ShardTarget: 100, Epsilon: DefaultEpsilon}}
	for i := range 30 {
		in.Members = append(in.Members, Member{Peer: peerN(i), Capacity: 100_000, Domain: []string{"eu", "us", "asia", "sa"}[i%4]})
	}
	for i := range 500 {
		in.Shards = append(in.Shards, Shard{ID: int64(i), Bytes: 1000})
	}
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, in, p)
	if s := p.SharedDomains(); len(s) != 0 {
		t.Fatalf("%d shards share a domain with 4 domains and ample capacity: %v", len(s), s)
	}
	// Two domains for three copies: shared where impossible, never short.
	for i := range in.Members {
		in.Members[i].Domain = []string{"eu", "us"}[i%2]
	}
	p, err = Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Shortfalls()) != 0 || len(p.SharedDomains()) != 500 {
		t.Fatalf("two domains: %d shortfalls, %d shared (want 0, 500)", len(p.Shortfalls()), len(p.SharedDomains()))
	}
}

// Replication: every shard reaches min before any gets more than min.
func TestMinBeforeMax(t *testing.T) {
	in := Input{Algorithm: Algorithm, AlgVer: Version, Params: Params{ReplMin: 2, ReplMax: 3, ShardTarget: 100, Epsilon: DefaultEpsilon}}
	for i := range 10 {
		in.Members = append(in.Members, Member{Peer: peerN(i), Capacity: 2500})
	}
	for i := range 100 {
		in.Shards = append(in.Shards, Shard{ID: int64(i), Bytes: 100}) // 25,000 pledged: 2.5 copies fit
	}
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, in, p)
	counts := map[int]int{}
	for i := range p.Len() {
		counts[len(p.Shard(i).Holders)]++
	}
	if counts[0]+counts[1] != 0 || counts[2]+counts[3] != 100 || counts[3] == 0 {
		t.Fatalf("holder counts %v: want every shard at 2 or 3 and some at 3", counts)
	}
}

// The ranking's first place goes to member i with probability w_i/sum(w).
func TestRankingWeighted(t *testing.T) {
	keys := []uint64{peerKey([]byte("a")), peerKey([]byte("b")), peerKey([]byte("c"))}
	w := []uint64{1, 2, 5}
	wins := make([]int, 3)
	const n = 80_000
	for id := uint64(0); id < n; id++ {
		best := 0
		for k := 1; k < 3; k++ {
			if lessScore(scoreOf(keys[k], id), w[k], scoreOf(keys[best], id), w[best]) < 0 {
				best = k
			}
		}
		wins[best]++
	}
	for k := range 3 {
		want := float64(n) * float64(w[k]) / 8
		if got := float64(wins[k]); got < want*0.97 || got > want*1.03 {
			t.Errorf("member %d won %v of %d, want about %v", k, got, n, want)
		}
	}
}

func TestLog2Table(t *testing.T) {
	// log2(1) = 0, log2(2) = 1, log2(1.5) = 0.5849625007211562
	if log2Table[0] != 0 || log2Table[len(log2Table)-1] != 1<<logFrac {
		t.Fatalf("table ends %d %d", log2Table[0], log2Table[len(log2Table)-1])
	}
	got := float64(log2Table[len(log2Table)/2]) / (1 << logFrac)
	if d := got - 0.5849625007211562; d > 1e-15 || d < -1e-15 {
		t.Fatalf("log2(1.5) = %v", got)
	}
	for k := 1; k < len(log2Table); k++ {
		if log2Table[k] <= log2Table[k-1] {
			t.Fatalf("table not increasing at %d", k)
		}
	}
	for x := uint64(1); x < 1<<20; x = x*3 + 1 {
		if expScore(x) < expScore(x+1) {
			t.Fatalf("expScore not decreasing at %d", x)
		}
	}
}

func TestPermuteInverse(t *testing.T) {
	for _, key := range []uint64{0, 1, 0xdeadbeef, ^uint64(0)} {
		seen := make([]bool, groupSize)
		for p := uint64(0); p < groupSize; p++ {
			x := permute(p, key)
			if seen[x] {
				t.Fatalf("key %x: permute not a bijection at %d", key, p)
			}
			seen[x] = true
			if unpermute(x, key) != p {
				t.Fatalf("key %x: unpermute(permute(%d)) = %d", key, p, unpermute(x, key))
			}
		}
	}
}

// referenceRepair returns version 3's repair (repair.go) over the
// reference's holders and loads, written from its definition: the first
// repairK members of each shard's full ranking, a member's shards found by
// scanning every shard, the budget charged as the definition says (one
// unit per ranking position read, per member scored when a ranking is read
// past the members below the candidate threshold, and per shard of a
// member examined for moves).
func referenceRepair(ms []member, shs []shard, hold [][]int32, load []int64, strictOpts []bool) (func(want func(shard) int32, live bool) bool, *int64) {
	budget := int64(repairBudgetBase + repairBudgetPerShard*len(shs))
	var sw uint64
	nw := 0
	for _, m := range ms {
		sw += uint64(m.cap)
		if m.cap > 0 {
			nw++
		}
	}
	ranks := map[int32][]int32{}
	listLen := map[int32]int{}
	scanned := map[int32]bool{}
	ranking := func(s int32) []int32 {
		if r, ok := ranks[s]; ok {
			return r
		}
		var r []int32
		sc := map[int32]uint64{}
		below := 0
		for mi, m := range ms {
			if m.cap == 0 {
				continue
			}
			e := scoreOf(m.key, uint64(shs[s].id))
			r = append(r, int32(mi))
			sc[int32(mi)] = e
			// E/w below candidateLoad/sum(w): the precomputed list
			h1, l1 := bits.Mul64(e, sw)
			h2, l2 := bits.Mul64(uint64(candidateLoad)<<scoreFrac, uint64(m.cap))
			if h1 < h2 || (h1 == h2 && l1 < l2) {
				below++
			}
		}
		sort.Slice(r, func(a, b int) bool {
			if c := lessScore(sc[r[a]], uint64(ms[r[a]].cap), sc[r[b]], uint64(ms[r[b]].cap)); c != 0 {
				return c < 0
			}
			return r[a] < r[b]
		})
		ranks[s], listLen[s] = r, below
		return r
	}
	charge := func(n int64) bool {
		if budget < n {
			budget = -1
			return false
		}
		budget -= n
		return true
	}
	rankAt := func(s int32, k int) (int32, bool) {
		if !charge(1) {
			return -1, false
		}
		r := ranking(s)
		if k >= listLen[s] {
			if listLen[s] == len(r) {
				return -1, false
			}
			if !scanned[s] {
				if !charge(int64(nw)) {
					return -1, false
				}
				scanned[s] = true
			}
		}
		if k < len(r) {
			return r[k], true
		}
		return -1, false
	}
	free := func(m int32) int64 { return ms[m].cap - load[m] }
	canHold := func(s, m int32, strict, live bool, skip int32) bool {
		if (live && ms[m].offline) || shs[s].excluded(m) {
			return false
		}
		for _, h := range hold[s] {
			if h == m || (strict && ms[m].domain >= 0 && h != skip && ms[h].domain == ms[m].domain) {
				return false
			}
		}
		return true
	}
	add := func(s, m int32) {
		hold[s] = append(hold[s], m)
		load[m] += shs[s].bytes
	}
	// room plans moves of m's shards until m has room for s, and applies
	// them if it gets there (repair.go, makeRoom).
	room := func(s, m int32, strict, live bool) bool {
		lack := shs[s].bytes - free(m)
		var mine, ts []int32
		for t := range shs {
			if slices.Contains(hold[t], m) {
				mine = append(mine, int32(t))
			}
		}
		if !charge(int64(len(mine))) {
			return false
		}
		for _, t := range mine {
			if !slices.Contains(shs[t].pinned(), m) {
				ts = append(ts, t)
			}
		}
		sort.SliceStable(ts, func(a, b int) bool { return shs[ts[a]].bytes < shs[ts[b]].bytes })
		type mv struct{ t, n int32 }
		var plan []mv
		inPlan := map[int32]bool{}
		dest := func(t int32) (int32, bool) {
			for j := range repairK {
				n, ok := rankAt(t, j)
				if !ok {
					break
				}
				if n == m || !canHold(t, n, strict, live, m) {
					continue
				}
				r := free(n)
				for _, p := range plan {
					if p.n == n {
						r -= shs[p.t].bytes
					}
				}
				if r >= shs[t].bytes {
					return n, true
				}
			}
			return -1, false
		}
		for len(plan) < repairMoves {
			var big, small []int32 // free enough alone, ascending; less, descending
			for _, t := range ts {
				if inPlan[t] {
					continue
				}
				if shs[t].bytes >= lack {
					big = append(big, t)
				} else {
					small = append([]int32{t}, small...)
				}
			}
			for i, t := range big {
				if i == repairK {
					break
				}
				if n, ok := dest(t); ok {
					plan = append(plan, mv{t, n})
					for _, p := range plan {
						hold[p.t] = slices.DeleteFunc(hold[p.t], func(h int32) bool { return h == m })
						load[m] -= shs[p.t].bytes
						add(p.t, p.n)
					}
					return true
				}
				if budget < 0 {
					return false
				}
			}
			next := false
			for i, t := range small {
				if i == repairK {
					break
				}
				if n, ok := dest(t); ok {
					plan = append(plan, mv{t, n})
					inPlan[t] = true
					lack -= shs[t].bytes
					next = true
					break
				}
				if budget < 0 {
					return false
				}
			}
			if !next {
				return false
			}
		}
		return false
	}
	one := func(s int32, strict, live bool) bool {
		b := shs[s].bytes
		for k := range repairK {
			m, ok := rankAt(s, k)
			if !ok {
				break
			}
			if free(m) >= b && canHold(s, m, strict, live, -1) {
				add(s, m)
				return true
			}
		}
		for k := 0; k < repairK && budget >= 0; k++ {
			m, ok := rankAt(s, k)
			if !ok {
				break
			}
			if ms[m].cap < b || !canHold(s, m, strict, live, -1) {
				continue
			}
			if room(s, m, strict, live) {
				add(s, m)
				return true
			}
		}
		return false
	}
	return func(want func(shard) int32, live bool) bool {
		if budget < 0 {
			return false
		}
		var total int64
		for m := range ms {
			if !live || !ms[m].offline {
				total += free(int32(m))
			}
		}
		changed := false
		for si := range shs {
			s := int32(si)
			for {
				have := 0
				for _, h := range hold[s] {
					if !live || !ms[h].offline {
						have++
					}
				}
				if int32(have) >= want(shs[s]) || shs[s].bytes > total {
					break
				}
				ok := false
				for _, strict := range strictOpts {
					if ok = one(s, strict, live); ok || budget < 0 {
						break
					}
				}
				if !ok {
					break
				}
				changed = true
				total -= shs[s].bytes
			}
			if budget < 0 {
				break
			}
		}
		return changed
	}, &budget
}
