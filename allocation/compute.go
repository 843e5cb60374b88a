package allocation

import (
	"math/bits"
	"slices"
)

// candidateLoad is the expected length, divided by ln 2, of the candidate
// list precomputed for each shard. It trades memory for the rare O(members)
// scan of a shard whose list runs out; it never changes the result.
const candidateLoad = 20

// engine holds the state of one Compute call.
type engine struct {
	ms  []member
	shs []shard
	w   []uint64 // ranking weight = capacity
	sw  uint64   // sum of w

	// Candidate lists: for shard s, candM/candE[candOff[s]:candOff[s+1]] in
	// rank order, holding exactly the members whose score is below the
	// threshold; ext[s] continues the list when it runs out.
	candOff []int32
	candM   []int32
	candE   []uint64
	ext     map[int32][]cand

	// frozen marks the members that gave up shards in the last trim
	// (version 2): the balance-bound passes that follow give them nothing.
	// nil when no member is frozen.
	frozen []bool

	load    []int64
	hOff    []int32 // holder slots of shard s: holders[hOff[s]:hOff[s+1]]
	hCnt    []int32
	holders []int32

	// version 3 repair state (repair.go)
	budget int64             // work units the repair may still spend; < 0 once spent
	nw     int32             // members with a non-zero weight: the length of every ranking
	rk     map[int32][]int32 // ranking positions past the candidate list, up to repairK
	held   [][]int32         // shards of each member while a repair runs; nil otherwise
	grown  []int32           // members that moved copies away since the last roomLeft

	// pass state
	pos  []int32
	curM []int32
	curE []uint64
	heap []int32
}

type cand struct {
	m int32
	e uint64
}

// Compute returns the allocation of in. It is a pure function of in: the
// same input, in any order, gives the same Plan on every platform.
func Compute(in Input) (*Plan, error) {
	e, domains, probs, err := compute(in)
	if err != nil {
		return nil, err
	}
	return e.plan(in, domains, probs), nil
}

// compute runs the algorithm; Compute turns the engine's state into a Plan.
func compute(in Input) (*engine, []string, []Problem, error) {
	ms, shs, domains, probs, err := canon(in)
	if err != nil {
		return nil, nil, nil, err
	}
	e := newEngine(ms, shs)
	e.candidates()
	probs = append(probs, e.pins()...)

	var capTotal int64
	var lmin, lmax int64
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
	capA := balanceCaps(ms, lmin, capTotal, in.Params.Epsilon)
	capB := balanceCaps(ms, lmax, capTotal, in.Params.Epsilon)
	hasDomains := len(domains) > 0
	repair := in.AlgVer >= 2
	swaps := in.AlgVer >= 3
	if swaps {
		e.budget = repairBudgetBase + repairBudgetPerShard*int64(len(shs))
	}
	minWant := func(s *shard) int32 { return s.min }
	maxWant := func(s *shard) int32 { return s.max }
	// pledgePasses are the passes bound by the bare pledge only.
	pledgePasses := func(want func(*shard) int32, live bool) {
		if hasDomains {
			e.pass(hard, want, true, live)
		}
		e.pass(hard, want, false, live)
	}
	for phase, ph := range []struct {
		caps  []int64
		want  func(s *shard) int32
		floor func(s *shard) int32
	}{
		{capA, minWant, func(*shard) int32 { return 0 }},
		{capB, maxWant, minWant},
	} {
		if repair {
			// Version 2: plain weighted rendezvous first (only pledges
			// bound it), then every member over its balance bound gives
			// up the shards it ranks worst; the greedy passes below place
			// those copies.
			pledgePasses(ph.want, false)
			e.trim(ph.caps, ph.floor)
		}
		if hasDomains {
			e.pass(ph.caps, ph.want, true, false)
		}
		e.pass(ph.caps, ph.want, false, false)
		e.frozen = nil // a pledge-bound pass may use any member
		pledgePasses(ph.want, false)
		if swaps {
			// Version 3: moves that make room for the shards the passes
			// left short, of their minimum first, then (phase B) of
			// their maximum. Phase A's repair comes before phase B so
			// that no shard gets more than its minimum while another
			// could be brought up to it. The passes run again when a
			// move left room that a shard still short could use.
			e.repair(minWant, false, hasDomains)
			if phase == 1 {
				e.repair(maxWant, false, hasDomains)
			}
			if e.roomLeft(ph.want, false) {
				pledgePasses(ph.want, false)
			}
			e.grown = e.grown[:0]
		}
	}
	// Offline members keep their places; a shard whose live holders fell
	// below its minimum gains live holders from further down its ranking.
	for _, caps := range [][]int64{capB, hard} {
		if hasDomains {
			e.pass(caps, minWant, true, true)
		}
		e.pass(caps, minWant, false, true)
	}
	// Version 3: the same repair for the shards still short of live
	// holders, moving copies between live members only. A move can free
	// room that a shard short of its maximum could use: the pledge passes
	// of phase B run again after the live ones.
	if swaps {
		e.repair(minWant, true, hasDomains)
		if e.roomLeft(minWant, true) {
			pledgePasses(minWant, true)
		}
		if e.roomLeft(maxWant, false) {
			pledgePasses(maxWant, false)
		}
	}
	return e, domains, probs, nil
}

func newEngine(ms []member, shs []shard) *engine {
	e := &engine{ms: ms, shs: shs, ext: map[int32][]cand{}}
	e.w = make([]uint64, len(ms))
	for i, m := range ms {
		e.w[i] = uint64(m.cap)
		e.sw += uint64(m.cap)
		if m.cap > 0 {
			e.nw++
		}
	}
	e.load = make([]int64, len(ms))
	e.hOff = make([]int32, len(shs)+1)
	var n int32
	for i, s := range shs {
		e.hOff[i] = n
		n += s.max + s.min + int32(len(s.pinned()))
	}
	e.hOff[len(shs)] = n
	e.hCnt = make([]int32, len(shs))
	e.holders = make([]int32, n)
	return e
}

// balanceCaps returns, for each member, the most bytes it may hold when the
// cluster stores total bytes: (1+eps) times its share of total, and never
// more than its capacity.
func balanceCaps(ms []member, total, capTotal, epsPPM int64) []int64 {
	caps := make([]int64, len(ms))
	if capTotal == 0 {
		return caps
	}
	for i, m := range ms {
		hi, lo := bits.Mul64(uint64(m.cap), uint64(total))
		share, _ := bits.Div64(hi, lo, uint64(capTotal)) // <= total: cap <= capTotal
		hi, lo = bits.Mul64(share, uint64(1_000_000+epsPPM))
		c, _ := bits.Div64(hi, lo, 1_000_000)
		caps[i] = min(m.cap, int64(min(c, uint64(MaxCapacity))))
	}
	return caps
}

// below reports whether e/w of member m is under the candidate threshold.
func (e *engine) below(sc uint64, m int32) bool {
	h1, l1 := bits.Mul64(sc, e.sw)
	h2, l2 := bits.Mul64(uint64(candidateLoad)<<scoreFrac, e.w[m])
	return h1 < h2 || (h1 == h2 && l1 < l2)
}

// candidates builds every shard's list of the members scoring below the
// threshold, one group of groupSize shard IDs at a time: each member
// enumerates its strata from the best down, which reaches the shards where
// it ranks well without scoring every (shard, member) pair.
func (e *engine) candidates() {
	S := len(e.shs)
	e.candOff = make([]int32, S+1)
	est := S * (candidateLoad*7/10 + 2)
	e.candM = make([]int32, 0, est)
	e.candE = make([]uint64, 0, est)
	var lookup [groupSize]int32
	var tmp []tmpCand
	var counts [groupSize + 1]int32
	for lo := 0; lo < S; {
		g := uint64(e.shs[lo].id) >> groupBits
		hi := lo
		for hi < S && uint64(e.shs[hi].id)>>groupBits == g {
			hi++
		}
		for r := range lookup {
			lookup[r] = -1
		}
		for s := lo; s < hi; s++ {
			lookup[e.shs[s].id&groupMask] = int32(s)
		}
		tmp = tmp[:0]
		for mi := range e.ms {
			m := int32(mi)
			if e.w[m] == 0 {
				continue
			}
			key := e.ms[m].key
			gk := groupKey(key, g)
			for p := uint64(groupSize - 1); ; p-- {
				if !e.below(stratumMinScore(p), m) {
					break
				}
				r := permute(p, gk)
				if s := lookup[r]; s >= 0 {
					if sc := pairScore(key, uint64(e.shs[s].id), p); e.below(sc, m) {
						tmp = append(tmp, tmpCand{r: uint16(r), m: m, e: sc})
					}
				}
				if p == 0 {
					break
				}
			}
		}
		// counting sort by shard offset, then rank each shard's list
		clear(counts[:])
		for _, t := range tmp {
			counts[t.r+1]++
		}
		for r := 1; r <= groupSize; r++ {
			counts[r] += counts[r-1]
		}
		base := len(e.candM)
		e.candM = slices.Grow(e.candM, len(tmp))[:base+len(tmp)]
		e.candE = slices.Grow(e.candE, len(tmp))[:base+len(tmp)]
		for _, t := range tmp {
			k := base + int(counts[t.r])
			counts[t.r]++
			e.candM[k], e.candE[k] = t.m, t.e
		}
		for s := lo; s < hi; s++ {
			r := e.shs[s].id & groupMask
			a, b := base, base+int(counts[r])
			if r > 0 {
				a = base + int(counts[r-1])
			}
			e.candOff[s] = int32(a)
			e.sortCands(a, b)
		}
		lo = hi
	}
	e.candOff[S] = int32(len(e.candM))
}

type tmpCand struct {
	r uint16
	m int32
	e uint64
}

// rankLess orders candidates of one shard: lower score first, ties by
// member index (that is, by peer ID bytes).
func (e *engine) rankLess(ma int32, ea uint64, mb int32, eb uint64) bool {
	if c := lessScore(ea, e.w[ma], eb, e.w[mb]); c != 0 {
		return c < 0
	}
	return ma < mb
}

func (e *engine) sortCands(a, b int) {
	// insertion sort: lists are short
	for i := a + 1; i < b; i++ {
		m, sc := e.candM[i], e.candE[i]
		j := i
		for j > a && e.rankLess(m, sc, e.candM[j-1], e.candE[j-1]) {
			e.candM[j], e.candE[j] = e.candM[j-1], e.candE[j-1]
			j--
		}
		e.candM[j], e.candE[j] = m, sc
	}
}

// extend computes the rest of shard s's ranking: every member above the
// threshold that could still take it (enough capacity left, not excluded).
func (e *engine) extend(s int32) []cand {
	sh := &e.shs[s]
	id := uint64(sh.id)
	var out []cand
	for mi := range e.ms {
		m := int32(mi)
		if e.w[m] == 0 || e.ms[m].cap-e.load[m] < sh.bytes || sh.excluded(m) {
			continue
		}
		sc := scoreOf(e.ms[m].key, id)
		if e.below(sc, m) {
			continue // already in the precomputed list
		}
		out = append(out, cand{m, sc})
	}
	slices.SortFunc(out, func(a, b cand) int {
		if e.rankLess(a.m, a.e, b.m, b.e) {
			return -1
		}
		return 1
	})
	return out
}

// pins places the overrides' pinned peers first, within hard capacity.
func (e *engine) pins() []Problem {
	var probs []Problem
	for si := range e.shs {
		s := &e.shs[si]
		for _, m := range s.pinned() {
			if e.load[m]+s.bytes > e.ms[m].cap {
				probs = append(probs, Problem{Shard: s.id, Peer: e.ms[m].peer, Err: ErrPinCapacity})
				continue
			}
			e.addHolder(int32(si), m)
		}
	}
	return probs
}

func (e *engine) addHolder(s, m int32) {
	e.holders[e.hOff[s]+e.hCnt[s]] = m
	e.hCnt[s]++
	e.load[m] += e.shs[s].bytes
}

func (e *engine) shardHolders(s int32) []int32 {
	return e.holders[e.hOff[s] : e.hOff[s]+e.hCnt[s]]
}

// need returns how many more holders shard s wants in this pass.
func (e *engine) need(s int32, want int32, live bool) int32 {
	have := e.hCnt[s]
	if live {
		have = 0
		for _, h := range e.shardHolders(s) {
			if !e.ms[h].offline {
				have++
			}
		}
	}
	return want - have
}

// advance loads shard s's candidate at pos[s] into curM/curE; false when
// the ranking is exhausted.
func (e *engine) advance(s int32) bool {
	p := e.pos[s]
	n := e.candOff[s+1] - e.candOff[s]
	if p < n {
		k := e.candOff[s] + p
		e.curM[s], e.curE[s] = e.candM[k], e.candE[k]
		return true
	}
	x, ok := e.ext[s]
	if !ok {
		x = e.extend(s)
		e.ext[s] = x
	}
	if int(p-n) < len(x) {
		c := x[p-n]
		e.curM[s], e.curE[s] = c.m, c.e
		return true
	}
	return false
}

// eligible reports whether member m may become a holder of shard s.
func (e *engine) eligible(s, m int32, caps []int64, strict, live bool) bool {
	sh := &e.shs[s]
	if e.load[m]+sh.bytes > caps[m] || (live && e.ms[m].offline) || sh.excluded(m) {
		return false
	}
	if e.frozen != nil && e.frozen[m] {
		return false
	}
	d := e.ms[m].domain
	for _, h := range e.shardHolders(s) {
		if h == m || (strict && d >= 0 && e.ms[h].domain == d) {
			return false
		}
	}
	return true
}

// pass runs the global greedy: over all shards still short of want, take
// (shard, member) pairs in increasing score order and accept each pair
// whose member is eligible, until every shard has what it wants or has run
// out of candidates. The result does not depend on the order of shards.
func (e *engine) pass(caps []int64, want func(*shard) int32, strict, live bool) {
	S := len(e.shs)
	if e.pos == nil {
		e.pos = make([]int32, S)
		e.curM = make([]int32, S)
		e.curE = make([]uint64, S)
		e.heap = make([]int32, 0, S)
	}
	clear(e.pos)
	e.heap = e.heap[:0]
	// room bounds from above the room any member has under caps. Loads
	// only grow in a pass, so a shard larger than room can take no holder
	// until the pass ends: it leaves the heap at once instead of being
	// offered to each of its remaining candidates, none of which could
	// take it (the pairs taken are the same). room is computed again
	// every len(e.ms) steps, which keeps its cost within one step each.
	room := e.maxRoom(caps)
	for si := range e.shs {
		s := int32(si)
		if e.shs[s].bytes <= room && e.need(s, want(&e.shs[s]), live) > 0 && e.advance(s) {
			e.heap = append(e.heap, s)
		}
	}
	for i := len(e.heap)/2 - 1; i >= 0; i-- {
		e.down(i)
	}
	for steps := 0; len(e.heap) > 0; steps++ {
		if steps == len(e.ms) {
			room, steps = e.maxRoom(caps), 0
		}
		s := e.heap[0]
		if e.shs[s].bytes <= room {
			m := e.curM[s]
			if e.eligible(s, m, caps, strict, live) {
				e.addHolder(s, m)
			}
			e.pos[s]++
			if e.need(s, want(&e.shs[s]), live) > 0 && e.advance(s) {
				e.down(0)
				continue
			}
		}
		last := len(e.heap) - 1
		e.heap[0] = e.heap[last]
		e.heap = e.heap[:last]
		if last > 0 {
			e.down(0)
		}
	}
}

// maxRoom returns the most room a member with a non-zero weight has
// under caps.
func (e *engine) maxRoom(caps []int64) int64 {
	room := int64(-1)
	for m, c := range caps {
		if e.w[m] != 0 {
			room = max(room, c-e.load[m])
		}
	}
	return room
}

func (e *engine) heapLess(a, b int32) bool {
	ma, mb := e.curM[a], e.curM[b]
	if c := lessScore(e.curE[a], e.w[ma], e.curE[b], e.w[mb]); c != 0 {
		return c < 0
	}
	if ma != mb {
		return ma < mb
	}
	return a < b
}

func (e *engine) down(i int) {
	h := e.heap
	n := len(h)
	x := h[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && e.heapLess(h[c+1], h[c]) {
			c++
		}
		if !e.heapLess(h[c], x) {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = x
}

// trim is the repair step of version 2. Every member whose load is above
// caps gives up shards, the one it ranks worst (highest score) first, until
// its load is within caps. It keeps pinned shards, and no shard goes below
// floor holders. Members are trimmed in index order. Trimmed members are
// frozen: the balance-bound passes that follow place the copies they gave
// up elsewhere and give them no other shard, so that the set a trimmed
// member keeps depends only on its own ranking and bound.
func (e *engine) trim(caps []int64, floor func(*shard) int32) {
	type held struct {
		s int32
		e uint64
	}
	var frozen []bool
	for m := range e.ms {
		if e.load[m] > caps[m] {
			if frozen == nil {
				frozen = make([]bool, len(e.ms))
			}
			frozen[m] = true
		}
	}
	if frozen == nil {
		return
	}
	e.frozen = frozen
	over := make([][]held, len(e.ms))
	for si := range e.shs {
		s := int32(si)
		for _, m := range e.shardHolders(s) {
			if frozen[m] && !slices.Contains(e.shs[s].pinned(), m) {
				over[m] = append(over[m], held{s, scoreOf(e.ms[m].key, uint64(e.shs[s].id))})
			}
		}
	}
	for mi, hs := range over {
		m := int32(mi)
		// worst first; equal scores: higher shard ID first
		slices.SortFunc(hs, func(a, b held) int {
			if a.e != b.e {
				if a.e > b.e {
					return -1
				}
				return 1
			}
			return int(b.s - a.s)
		})
		for _, h := range hs {
			if e.load[m] <= caps[m] {
				break
			}
			if e.hCnt[h.s] <= floor(&e.shs[h.s]) {
				continue
			}
			e.removeHolder(h.s, m)
		}
	}
	// extension lists were cut by the room members had; loads went down
	clear(e.ext)
}

// removeHolder takes m off shard s, keeping the order of the others.
func (e *engine) removeHolder(s, m int32) {
	hs := e.shardHolders(s)
	k := slices.Index(hs, m)
	copy(hs[k:], hs[k+1:])
	e.hCnt[s]--
	e.load[m] -= e.shs[s].bytes
}
