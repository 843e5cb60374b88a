package allocation

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
)

// Reason says why a shard has fewer holders than its minimum.
type Reason int

// Reasons. Values are part of reports; do not reorder.
const (
	ReasonCapacity  Reason = iota + 1 // enough members, not enough free pledged capacity
	ReasonMembers                     // fewer members with the capacity for it than its minimum
	ReasonOverrides                   // exclusions leave fewer eligible members than its minimum
	ReasonOffline                     // holders exist, but too few are live and no live member has room
)

func (r Reason) String() string {
	switch r {
	case ReasonCapacity:
		return "not enough capacity"
	case ReasonMembers:
		return "not enough members"
	case ReasonOverrides:
		return "overrides exclude too many members"
	case ReasonOffline:
		return "not enough live capacity"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Shortfall is a shard below its replication minimum.
type Shortfall struct {
	Shard   int64
	Min     int
	Holders int // all holders, offline included
	Live    int
	Reason  Reason
}

// Problem is an override that could not be applied; the rest of the
// allocation is computed without it.
type Problem struct {
	Shard int64
	Peer  []byte // nil when the problem is the shard itself
	Err   error  // ErrUnknownShard, ErrUnknownPeer, ErrPinCapacity, ErrPinExcluded
}

func (p Problem) Error() string {
	if p.Peer == nil {
		return fmt.Sprintf("override for shard %d: %v", p.Shard, p.Err)
	}
	return fmt.Sprintf("override for shard %d, peer %x: %v", p.Shard, p.Peer, p.Err)
}

func (p Problem) Unwrap() error { return p.Err }

// Plan is a computed allocation. It is immutable.
type Plan struct {
	algorithm string
	algVer    int64
	params    Params
	members   []member
	domains   []string
	shards    []shard
	hOff      []int32 // holders of shard i: holders[hOff[i]:hOff[i+1]], acceptance order
	holders   []int32
	mOff      []int32 // shards of member i: mShards[mOff[i]:mOff[i+1]], ascending
	mShards   []int32
	load      []int64
	short     []Shortfall
	shared    []int64
	problems  []Problem
}

func (e *engine) plan(in Input, domains []string, probs []Problem) *Plan {
	p := &Plan{
		algorithm: in.Algorithm, algVer: in.AlgVer, params: in.Params,
		members: e.ms, domains: domains, shards: e.shs, load: e.load, problems: probs,
	}
	S, N := len(e.shs), len(e.ms)
	p.hOff = make([]int32, S+1)
	var total int32
	for s := range S {
		p.hOff[s] = total
		total += e.hCnt[s]
	}
	p.hOff[S] = total
	p.holders = make([]int32, 0, total)
	p.mOff = make([]int32, N+1)
	for s := range S {
		hs := e.shardHolders(int32(s))
		p.holders = append(p.holders, hs...)
		for _, m := range hs {
			p.mOff[m+1]++
		}
	}
	for m := range N {
		p.mOff[m+1] += p.mOff[m]
	}
	p.mShards = make([]int32, total)
	fill := slices.Clone(p.mOff[:N])
	for s := range S {
		for _, m := range p.holders[p.hOff[s]:p.hOff[s+1]] {
			p.mShards[fill[m]] = int32(s)
			fill[m]++
		}
	}
	p.shortfalls()
	return p
}

func (p *Plan) shortfalls() {
	caps := make([]int64, 0, len(p.members))
	for _, m := range p.members {
		if m.cap > 0 {
			caps = append(caps, m.cap)
		}
	}
	slices.Sort(caps)
	for s := range p.shards {
		sh := &p.shards[s]
		hs := p.holders[p.hOff[s]:p.hOff[s+1]]
		live := 0
		seen := map[int32]bool{}
		sharedDomain := false
		for _, h := range hs {
			if !p.members[h].offline {
				live++
			}
			if d := p.members[h].domain; d >= 0 {
				sharedDomain = sharedDomain || seen[d]
				seen[d] = true
			}
		}
		if sharedDomain {
			p.shared = append(p.shared, sh.id)
		}
		if live >= int(sh.min) {
			continue
		}
		f := Shortfall{Shard: sh.id, Min: int(sh.min), Holders: len(hs), Live: live}
		i, _ := slices.BinarySearch(caps, sh.bytes)
		able := len(caps) - i // members whose whole pledge could take it
		excluded := 0
		var ex []int32
		if sh.ov != nil {
			ex = sh.ov.exclude
		}
		for _, m := range ex {
			if p.members[m].cap >= sh.bytes && p.members[m].cap > 0 {
				excluded++
			}
		}
		switch {
		case len(hs) >= int(sh.min):
			f.Reason = ReasonOffline
		case able < int(sh.min):
			f.Reason = ReasonMembers
		case able-excluded < int(sh.min):
			f.Reason = ReasonOverrides
		default:
			f.Reason = ReasonCapacity
		}
		p.short = append(p.short, f)
	}
}

// Algorithm returns the algorithm name and version the plan was computed by.
func (p *Plan) Algorithm() (string, int64) { return p.algorithm, p.algVer }

// Len returns the number of shards.
func (p *Plan) Len() int { return len(p.shards) }

// ShardAlloc is one shard and its holders.
type ShardAlloc struct {
	ID       int64
	Bytes    int64
	Pins     int64
	Min, Max int
	Holders  [][]byte // peer IDs: pinned first, then in the order the algorithm chose them
}

// Shard returns the i-th shard in ascending ID order, 0 <= i < Len().
func (p *Plan) Shard(i int) ShardAlloc {
	sh := &p.shards[i]
	out := ShardAlloc{ID: sh.id, Bytes: sh.bytes, Pins: sh.pins, Min: int(sh.min), Max: int(sh.max)}
	for _, m := range p.holders[p.hOff[i]:p.hOff[i+1]] {
		out.Holders = append(out.Holders, p.members[m].peer)
	}
	return out
}

// Holders returns the holders of the shard with the given ID.
func (p *Plan) Holders(id int64) ([][]byte, bool) {
	i, ok := slices.BinarySearchFunc(p.shards, id, func(s shard, id int64) int { return cmpInt64(s.id, id) })
	if !ok {
		return nil, false
	}
	return p.Shard(i).Holders, true
}

// ShardsOf returns the IDs of the shards assigned to peer, ascending; nil
// if peer is not a member or holds nothing. It costs O(log members + its
// shards): followers call it on every head.
func (p *Plan) ShardsOf(peer []byte) []int64 {
	m, ok := findPeer(p.members, peer)
	if !ok {
		return nil
	}
	idx := p.mShards[p.mOff[m]:p.mOff[m+1]]
	if len(idx) == 0 {
		return nil
	}
	out := make([]int64, len(idx))
	for k, s := range idx {
		out[k] = p.shards[s].id
	}
	return out
}

// MemberLoad is one member's share of the plan.
type MemberLoad struct {
	Peer     []byte
	Capacity int64
	Domain   string
	Offline  bool
	Bytes    int64 // bytes of the shards assigned to it
	Shards   int
}

// Members returns every member's load, in peer ID order.
func (p *Plan) Members() []MemberLoad {
	out := make([]MemberLoad, len(p.members))
	for i, m := range p.members {
		out[i] = MemberLoad{Peer: m.peer, Capacity: m.cap, Offline: m.offline,
			Bytes: p.load[i], Shards: int(p.mOff[i+1] - p.mOff[i])}
		if m.domain >= 0 {
			out[i].Domain = p.domains[m.domain]
		}
	}
	return out
}

// Shortfalls returns the shards below their minimum, by ascending ID.
func (p *Plan) Shortfalls() []Shortfall { return slices.Clone(p.short) }

// SharedDomains returns the shards two of whose holders share a failure
// domain (kept only where distinct domains were impossible within the
// balance and capacity bounds), by ascending ID.
func (p *Plan) SharedDomains() []int64 { return slices.Clone(p.shared) }

// Problems returns the overrides that could not be applied.
func (p *Plan) Problems() []Problem { return slices.Clone(p.problems) }

// Stats summarises a plan.
type Stats struct {
	Members   int     `json:"members"`
	Shards    int     `json:"shards"`
	Capacity  int64   `json:"capacity_bytes"` // sum of pledges
	Stored    int64   `json:"stored_bytes"`   // sum of assigned bytes, all copies
	Replicas  int64   `json:"replicas"`
	MeanFill  float64 `json:"mean_fill"` // Stored / Capacity
	MaxFill   float64 `json:"max_fill"`  // max over members of bytes / capacity
	Balance   float64 `json:"balance"`   // MaxFill / MeanFill; 0 when nothing is stored
	BelowMin  int     `json:"below_min"`
	Overfull  int     `json:"overfull"` // members given more than their pledge: always 0
	SharedDom int     `json:"shared_domain"`
}

// Stats computes the plan's summary figures (floating point: for reports
// only, never for decisions).
func (p *Plan) Stats() Stats {
	st := Stats{Members: len(p.members), Shards: len(p.shards), Replicas: int64(len(p.holders)),
		BelowMin: len(p.short), SharedDom: len(p.shared)}
	for i, m := range p.members {
		st.Capacity += m.cap
		st.Stored += p.load[i]
		if p.load[i] > m.cap {
			st.Overfull++
		}
		if m.cap > 0 {
			st.MaxFill = max(st.MaxFill, float64(p.load[i])/float64(m.cap))
		}
	}
	if st.Capacity > 0 {
		st.MeanFill = float64(st.Stored) / float64(st.Capacity)
	}
	if st.MeanFill > 0 {
		st.Balance = st.MaxFill / st.MeanFill
	}
	return st
}

// Moved returns the bytes that must be copied to go from before to after:
// for every shard of after, its bytes times the number of its holders that
// did not hold it in before. Deletions cost nothing.
func Moved(before, after *Plan) int64 {
	// map after's member indexes to before's (-1: new member)
	toBefore := make([]int32, len(after.members))
	for i, m := range after.members {
		j, ok := findPeer(before.members, m.peer)
		toBefore[i] = int32(j)
		if !ok {
			toBefore[i] = -1
		}
	}
	var moved int64
	bi := 0
	for s := range after.shards {
		sh := &after.shards[s]
		for bi < len(before.shards) && before.shards[bi].id < sh.id {
			bi++
		}
		var old []int32
		if bi < len(before.shards) && before.shards[bi].id == sh.id {
			old = before.holders[before.hOff[bi]:before.hOff[bi+1]]
		}
		for _, h := range after.holders[after.hOff[s]:after.hOff[s+1]] {
			if b := toBefore[h]; b < 0 || !slices.Contains(old, b) {
				moved += sh.bytes
			}
		}
	}
	return moved
}

// WriteText writes the plan as stable text: one line per shard with its
// holders' peer IDs in hex, then each member's load, then shortfalls and
// problems. Golden tests compare this form.
func (p *Plan) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "algorithm %s %d\n", p.algorithm, p.algVer)
	for i := range p.shards {
		sh := &p.shards[i]
		fmt.Fprintf(bw, "shard %d bytes %d repl %d..%d:", sh.id, sh.bytes, sh.min, sh.max)
		for _, m := range p.holders[p.hOff[i]:p.hOff[i+1]] {
			fmt.Fprintf(bw, " %s", hex.EncodeToString(p.members[m].peer))
		}
		bw.WriteByte('\n')
	}
	for _, m := range p.Members() {
		fmt.Fprintf(bw, "member %s capacity %d bytes %d shards %d", hex.EncodeToString(m.Peer), m.Capacity, m.Bytes, m.Shards)
		if m.Domain != "" {
			fmt.Fprintf(bw, " domain %q", m.Domain)
		}
		if m.Offline {
			bw.WriteString(" offline")
		}
		bw.WriteByte('\n')
	}
	for _, f := range p.short {
		fmt.Fprintf(bw, "below-min shard %d holders %d live %d min %d: %s\n", f.Shard, f.Holders, f.Live, f.Min, f.Reason)
	}
	for _, id := range p.shared {
		fmt.Fprintf(bw, "shared-domain shard %d\n", id)
	}
	for _, pr := range p.problems {
		fmt.Fprintf(bw, "problem %s\n", pr.Error())
	}
	return bw.Flush()
}

// Params returns the parameters the plan was computed with.
func (p *Plan) Params() Params { return p.params }
