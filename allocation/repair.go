package allocation

import "slices"

// Version 3's repair: a shard that the greedy passes left short, although
// the cluster has free pledge enough for it, is usually short because the
// free room is split between members none of which can take it whole. The
// repair moves a copy of another shard t (or a few) from a member m that
// could take the short shard s but for room to members n that have room
// for t, and gives s to m. docs/allocation.md describes it and its bound.

const (
	// repairK is how far down a ranking the repair looks: the members m
	// it considers for a short shard s are the first repairK of s's
	// ranking, the members n it considers for a moved shard t the first
	// repairK of t's; it tries at most repairK shards t per member m.
	repairK = 32

	// repairMoves is the most moves the repair makes to free room for one
	// copy.
	repairMoves = 4

	// The repair spends at most repairBudgetBase + repairBudgetPerShard x
	// shards work units in one Compute (see charge), and then stops.
	repairBudgetBase     = 1 << 16
	repairBudgetPerShard = 16
)

// charge spends n work units of the repair's budget. It returns false,
// and marks the budget spent, when fewer than n are left: the step it
// would pay for is not taken, nor any later one.
//
// A unit is one ranking position read (rankAt), one shard of a member's
// list examined for a move, or one member scored when a ranking is read
// past its candidate list (that costs every member with a non-zero weight,
// once per shard and Compute). The accounting is part of the algorithm's
// definition: the reference implementation in the tests charges the same.
func (e *engine) charge(n int64) bool {
	if e.budget < n {
		e.budget = -1
		return false
	}
	e.budget -= n
	return true
}

// rankAt returns the member at position k (< repairK) of shard s's full
// ranking (every member with a non-zero weight, by score; the ranking does
// not depend on loads), and false when the ranking is shorter or the budget
// is spent.
func (e *engine) rankAt(s int32, k int) (int32, bool) {
	if !e.charge(1) {
		return -1, false
	}
	a, b := int(e.candOff[s]), int(e.candOff[s+1])
	if k < b-a {
		return e.candM[a+k], true
	}
	if b-a == int(e.nw) {
		return -1, false // the candidate list is the whole ranking
	}
	rest, ok := e.rk[s]
	if !ok {
		if !e.charge(int64(e.nw)) {
			return -1, false
		}
		rest = e.rankRest(s, repairK-(b-a))
		if e.rk == nil {
			e.rk = map[int32][]int32{}
		}
		e.rk[s] = rest
	}
	if k-(b-a) < len(rest) {
		return rest[k-(b-a)], true
	}
	return -1, false
}

// rankRest returns the first n members of shard s's ranking that follow
// its candidate list, in rank order.
func (e *engine) rankRest(s int32, n int) []int32 {
	id := uint64(e.shs[s].id)
	best := make([]cand, 0, n)
	for mi := range e.ms {
		m := int32(mi)
		if e.w[m] == 0 {
			continue
		}
		sc := scoreOf(e.ms[m].key, id)
		if e.below(sc, m) {
			continue // in the candidate list
		}
		if len(best) == n && !e.rankLess(m, sc, best[n-1].m, best[n-1].e) {
			continue
		}
		if len(best) < n {
			best = append(best, cand{})
		}
		j := len(best) - 1
		for j > 0 && e.rankLess(m, sc, best[j-1].m, best[j-1].e) {
			best[j] = best[j-1]
			j--
		}
		best[j] = cand{m, sc}
	}
	out := make([]int32, len(best))
	for i, c := range best {
		out[i] = c.m
	}
	return out
}

// canHold reports whether member m may become a holder of shard s, room
// aside: not excluded, not a holder, live when live is set, and, when
// strict, of a failure domain no holder of s other than skip has.
func (e *engine) canHold(s, m int32, strict, live bool, skip int32) bool {
	sh := &e.shs[s]
	if (live && e.ms[m].offline) || sh.excluded(m) {
		return false
	}
	d := e.ms[m].domain
	for _, h := range e.shardHolders(s) {
		if h == m || (strict && d >= 0 && h != skip && e.ms[h].domain == d) {
			return false
		}
	}
	return true
}

func (e *engine) free(m int32) int64 { return e.ms[m].cap - e.load[m] }

// repair brings the shards short of want (counting live holders only when
// live is set) up to it where moves make room, in shard ID order, under the
// bare pledges, until the budget is spent. With live set, it gives copies
// to live members only and moves copies between live members only, so no
// shard loses a live holder; otherwise, like the passes it follows, it
// ignores whether members are live.
func (e *engine) repair(want func(*shard) int32, live, hasDomains bool) {
	if e.budget < 0 {
		return
	}
	// Moves do not change the free pledge of the cluster; each copy
	// added takes its bytes. A shard larger than what is left cannot be
	// placed whatever moves.
	var free int64
	for mi := range e.ms {
		if !live || !e.ms[mi].offline {
			free += e.free(int32(mi))
		}
	}
	stricts := []bool{false}
	if hasDomains {
		stricts = []bool{true, false}
	}
	for si := range e.shs {
		s := int32(si)
		for e.need(s, want(&e.shs[s]), live) > 0 && e.shs[s].bytes <= free {
			if e.held == nil {
				e.buildHeld()
			}
			ok := false
			for _, strict := range stricts {
				if ok = e.repairOne(s, strict, live); ok || e.budget < 0 {
					break
				}
			}
			if !ok {
				break
			}
			free -= e.shs[s].bytes
		}
		if e.budget < 0 {
			break
		}
	}
	e.held = nil
	e.forget()
}

// forget drops the extension lists that may lack a member whose room grew
// in the repair: an extension list holds only the members that had room
// for the shard when it was made. Only a member that moved copies away
// (grown) can have more room than it had then, and until the next repair
// or trim rooms only shrink.
func (e *engine) forget() {
	var most int64 = -1
	for _, g := range e.grown {
		most = max(most, e.free(g))
	}
	if most < 0 || len(e.ext) == 0 {
		return
	}
	for si := range e.shs {
		if e.shs[si].bytes <= most {
			delete(e.ext, int32(si))
		}
	}
}

// roomLeft reports whether a member whose room grew in a repair (grown)
// has room for a shard short of want that it may hold. The passes run
// after a repair place nothing unless one does: before the repair no
// member had room for a shard the passes left short, and no other member
// has gained room since. So Compute runs them again only then. With the
// grown members by decreasing room, a shard is checked only against those
// with room for it, and each of those but the last holds the shard, is
// excluded from it or is offline (in a live pass; the live repair grows
// live members only): the check costs O(shards + copies + exclusions +
// grown members log grown members).
func (e *engine) roomLeft(want func(*shard) int32, live bool) bool {
	if len(e.grown) == 0 {
		return false
	}
	gs := slices.Clone(e.grown)
	slices.SortFunc(gs, func(a, b int32) int {
		if c := cmpInt64(e.free(b), e.free(a)); c != 0 {
			return c
		}
		return int(a - b)
	})
	for si := range e.shs {
		s := int32(si)
		sh := &e.shs[s]
		if sh.bytes > e.free(gs[0]) || e.need(s, want(sh), live) <= 0 {
			continue
		}
		for _, g := range gs {
			if e.free(g) < sh.bytes {
				break
			}
			if e.canHold(s, g, false, live, -1) {
				return true
			}
		}
	}
	return false
}

// buildHeld indexes the shards each member holds.
func (e *engine) buildHeld() {
	e.held = make([][]int32, len(e.ms))
	for si := range e.shs {
		for _, m := range e.shardHolders(int32(si)) {
			e.held[m] = append(e.held[m], int32(si))
		}
	}
}

// repairOne gives shard s one more holder if it can: first a member of the
// first repairK of s's ranking that has room (the passes leave none, but
// an earlier move may have made some), then the first member m of that
// prefix for which makeRoom finds moves, which then takes s.
func (e *engine) repairOne(s int32, strict, live bool) bool {
	sh := &e.shs[s]
	for k := 0; k < repairK; k++ {
		m, ok := e.rankAt(s, k)
		if !ok {
			break
		}
		if e.free(m) >= sh.bytes && e.canHold(s, m, strict, live, -1) {
			e.addHolder(s, m)
			e.held[m] = append(e.held[m], s)
			return true
		}
	}
	for k := 0; k < repairK && e.budget >= 0; k++ {
		m, ok := e.rankAt(s, k)
		if !ok {
			break
		}
		if e.ms[m].cap < sh.bytes || !e.canHold(s, m, strict, live, -1) {
			continue
		}
		if e.makeRoom(s, m, strict, live) {
			e.addHolder(s, m)
			e.held[m] = append(e.held[m], s)
			return true
		}
	}
	return false
}

// move is one planned move of a copy of shard t to member n.
type move struct{ t, n int32 }

// makeRoom moves copies of other shards off member m, which lacks room for
// shard s, to members that have room for them, until m has room for s. It
// plans at most repairMoves moves and applies them only if they make
// enough room. Each step takes the smallest of m's shards (then the lowest
// ID) that frees all the room still lacking and has a destination, or
// failing that the largest that frees less and has one, and goes on. Only
// the repairK first candidates of each kind are tried; shards pinned to m
// are never moved. The destination of a shard t is the first of the first
// repairK members of t's ranking that may hold t (canHold, strict and live
// as for s, m's domain aside) and has room for it net of the moves already
// planned to it. So when one move is enough, it is the smallest that is.
func (e *engine) makeRoom(s, m int32, strict, live bool) bool {
	lack := e.shs[s].bytes - e.free(m) // > 0: repairOne found no room
	if !e.charge(int64(len(e.held[m]))) {
		return false
	}
	ts := make([]int32, 0, len(e.held[m]))
	for _, t := range e.held[m] {
		if !slices.Contains(e.shs[t].pinned(), m) {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b int32) int {
		if c := cmpInt64(e.shs[a].bytes, e.shs[b].bytes); c != 0 {
			return c
		}
		return int(a - b)
	})
	var plan []move
	planned := func(t int32) bool {
		return slices.ContainsFunc(plan, func(mv move) bool { return mv.t == t })
	}
	dest := func(t int32) (int32, bool) {
		tb := e.shs[t].bytes
		for j := 0; j < repairK; j++ {
			n, ok := e.rankAt(t, j)
			if !ok {
				break
			}
			if n == m || !e.canHold(t, n, strict, live, m) {
				continue
			}
			room := e.free(n)
			for _, mv := range plan {
				if mv.n == n {
					room -= e.shs[mv.t].bytes
				}
			}
			if room >= tb {
				return n, true
			}
		}
		return -1, false
	}
	for len(plan) < repairMoves {
		// ts[first:] free enough on their own
		first, _ := slices.BinarySearchFunc(ts, lack, func(t int32, b int64) int { return cmpInt64(e.shs[t].bytes, b) })
		tried := 0
		for _, t := range ts[first:] {
			if tried == repairK {
				break
			}
			if planned(t) {
				continue
			}
			tried++
			if n, ok := dest(t); ok {
				e.apply(m, append(plan, move{t, n}))
				return true
			}
			if e.budget < 0 {
				return false
			}
		}
		next := false
		tried = 0
		for i := first - 1; i >= 0 && tried < repairK; i-- {
			t := ts[i]
			if planned(t) {
				continue
			}
			tried++
			if n, ok := dest(t); ok {
				plan = append(plan, move{t, n})
				lack -= e.shs[t].bytes
				next = true
				break
			}
			if e.budget < 0 {
				return false
			}
		}
		if !next {
			return false
		}
	}
	return false
}

// apply makes the planned moves off m.
func (e *engine) apply(m int32, plan []move) {
	if !slices.Contains(e.grown, m) {
		e.grown = append(e.grown, m)
	}
	for _, mv := range plan {
		e.removeHolder(mv.t, m)
		e.addHolder(mv.t, mv.n)
		hm := e.held[m]
		i := slices.Index(hm, mv.t)
		hm[i] = hm[len(hm)-1]
		e.held[m] = hm[:len(hm)-1]
		e.held[mv.n] = append(e.held[mv.n], mv.t)
	}
}
