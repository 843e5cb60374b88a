package allocation

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Algorithm and Version name the algorithm this package computes. They are
// recorded in every signed allocation. Compute computes every version from
// 1 to Version and refuses anything else, so an improvement ships as a new
// Version beside the old one and never silently changes a published map.
// Version 1 is the bounded-load greedy; version 2 adds the
// rendezvous-then-trim step that moves fewer bytes on membership changes;
// version 3 (the newest) adds moves that make room for shards left below
// their replication (docs/allocation.md).
const (
	Algorithm = "pinfold/stratified-rendezvous"
	Version   = 3
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	ErrUnknownAlgorithm = errors.New("allocation: unknown algorithm or version")
	ErrInvalidParams    = errors.New("allocation: invalid parameters")
	ErrInvalidMember    = errors.New("allocation: invalid member")
	ErrInvalidShard     = errors.New("allocation: invalid shard")
	ErrInvalidOverride  = errors.New("allocation: invalid override")
	ErrTooLarge         = errors.New("allocation: input too large")

	// Override problems: reported in Plan.Problems, not returned.
	ErrUnknownShard = errors.New("allocation: override names an unknown shard")
	ErrUnknownPeer  = errors.New("allocation: override names a peer that is not a member")
	ErrPinCapacity  = errors.New("allocation: pinned peer lacks the capacity for the shard")
	ErrPinExcluded  = errors.New("allocation: peer is both pinned and excluded")
)

// Limits on the input. Counts are bounded so that indexes fit in int32.
const (
	MaxMembers = 1 << 24
	MaxShards  = 1 << 28
	MaxRepl    = 64
	// MaxCapacity bounds one pledge and the sum of all pledges (4 EiB).
	MaxCapacity = int64(1) << 62
)

// Member is an admitted member as the signed members list records it
// (dag.Member). Removed members are simply absent.
type Member struct {
	Peer     []byte // binary libp2p peer ID; unique
	Capacity int64  // pledged bytes, as signed by a curator
	Domain   string // failure-domain tag; "" for none
	Offline  *int64 // seq since which it has been offline; nil while live
}

// Shard is a group of pins allocated as a unit (dag.Shard). ReplMin and
// ReplMax of 0 mean the cluster defaults in Params.
type Shard struct {
	ID      int64 // >= 0; dense IDs from Packer make Compute fastest
	Bytes   int64
	Pins    int64
	ReplMin int64
	ReplMax int64
}

// Params are the cluster-wide parameters (dag.AllocParams).
type Params struct {
	ReplMin     int64 // default replication minimum, >= 1
	ReplMax     int64 // default replication maximum, >= ReplMin
	ShardTarget int64 // target shard size in bytes; used by Packer, recorded here
	Epsilon     int64 // load bound in parts per million over the mean fill
}

// DefaultEpsilon is 5 %: no member is filled more than 1.05 x the mean.
const DefaultEpsilon = 50_000

// DefaultParams returns the cluster defaults: replication 2..3, a 1 GiB
// shard target and a 5 % load bound.
func DefaultParams() Params {
	return Params{
		ReplMin:     2, // a shard survives one lost copy without moving
		ReplMax:     3, // and is stored three times when space allows
		ShardTarget: 1 << 30,
		Epsilon:     DefaultEpsilon,
	}
}

// Validate reports the first invalid field; it changes nothing.
func (p Params) Validate() error {
	switch {
	case p.ReplMin < 1 || p.ReplMin > MaxRepl:
		return fmt.Errorf("%w: allocation.repl_min must be in [1, %d], got %d", ErrInvalidParams, MaxRepl, p.ReplMin)
	case p.ReplMax < p.ReplMin || p.ReplMax > MaxRepl:
		return fmt.Errorf("%w: allocation.repl_max must be in [repl_min, %d], got %d", ErrInvalidParams, MaxRepl, p.ReplMax)
	case p.ShardTarget <= 0:
		return fmt.Errorf("%w: allocation.shard_target must be positive, got %d", ErrInvalidParams, p.ShardTarget)
	case p.Epsilon < 0 || p.Epsilon > 1_000_000:
		return fmt.Errorf("%w: allocation.epsilon must be in [0, 1000000] ppm, got %d", ErrInvalidParams, p.Epsilon)
	}
	return nil
}

// Override pins a shard to given peers or excludes peers from it
// (dag.Override).
type Override struct {
	Shard   int64
	Pin     [][]byte // peers that must hold the shard
	Exclude [][]byte // peers that must not
}

// Input is everything an allocation is computed from; each field maps 1:1
// onto the signed head. The order of Members, Shards and Overrides does not
// matter.
type Input struct {
	Algorithm string // must be Algorithm
	AlgVer    int64  // 1 to Version; new allocations use Version
	Params    Params
	Members   []Member
	Shards    []Shard
	Overrides []Override
}

// member is the canonical internal form of a Member.
type member struct {
	peer    []byte
	key     uint64
	cap     int64
	domain  int32 // -1 for none
	offline bool
}

type shard struct {
	id    int64
	bytes int64
	pins  int64
	min   int32
	max   int32
	ov    *override // nil for most shards
}

// override is an Override resolved to member indexes.
type override struct {
	exclude []int32 // ascending
	pin     []int32 // in override order
}

func (s *shard) excluded(m int32) bool {
	return s.ov != nil && slices.Contains(s.ov.exclude, m)
}

func (s *shard) pinned() []int32 {
	if s.ov == nil {
		return nil
	}
	return s.ov.pin
}

// canon validates an input and returns it sorted: members by peer bytes,
// shards by ID.
func canon(in Input) ([]member, []shard, []string, []Problem, error) {
	if in.Algorithm != Algorithm || in.AlgVer < 1 || in.AlgVer > Version {
		return nil, nil, nil, nil, fmt.Errorf("%w: %q version %d (this code computes %q versions 1 to %d)",
			ErrUnknownAlgorithm, in.Algorithm, in.AlgVer, Algorithm, Version)
	}
	if err := in.Params.Validate(); err != nil {
		return nil, nil, nil, nil, err
	}
	if len(in.Members) > MaxMembers {
		return nil, nil, nil, nil, fmt.Errorf("%w: %d members (max %d)", ErrTooLarge, len(in.Members), MaxMembers)
	}
	if len(in.Shards) > MaxShards {
		return nil, nil, nil, nil, fmt.Errorf("%w: %d shards (max %d)", ErrTooLarge, len(in.Shards), MaxShards)
	}
	ms := make([]member, len(in.Members))
	var total int64
	for i, m := range in.Members {
		if len(m.Peer) == 0 {
			return nil, nil, nil, nil, fmt.Errorf("%w: member %d has an empty peer ID", ErrInvalidMember, i)
		}
		if m.Capacity < 0 || m.Capacity > MaxCapacity {
			return nil, nil, nil, nil, fmt.Errorf("%w: member %x capacity %d out of range", ErrInvalidMember, m.Peer, m.Capacity)
		}
		total += m.Capacity
		if total > MaxCapacity {
			return nil, nil, nil, nil, fmt.Errorf("%w: total capacity exceeds %d", ErrInvalidMember, MaxCapacity)
		}
		ms[i] = member{peer: m.Peer, key: peerKey(m.Peer), cap: m.Capacity, offline: m.Offline != nil}
	}
	// sort indexes rather than members so domains can be read back
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ms[a].peer, ms[b].peer) })
	sorted := make([]member, len(ms))
	domainNames := make([]string, 0)
	for k, i := range order {
		sorted[k] = ms[i]
		if k > 0 && bytes.Equal(sorted[k-1].peer, sorted[k].peer) {
			return nil, nil, nil, nil, fmt.Errorf("%w: duplicate peer %x", ErrInvalidMember, sorted[k].peer)
		}
		if d := in.Members[i].Domain; d != "" {
			domainNames = append(domainNames, d)
		}
	}
	slices.Sort(domainNames)
	domainNames = slices.Compact(domainNames)
	for k, i := range order {
		sorted[k].domain = -1
		if d := in.Members[i].Domain; d != "" {
			j, _ := slices.BinarySearch(domainNames, d)
			sorted[k].domain = int32(j)
		}
	}

	shs := make([]shard, len(in.Shards))
	var sumBytes int64
	for i, s := range in.Shards {
		if s.ID < 0 {
			return nil, nil, nil, nil, fmt.Errorf("%w: shard %d has a negative ID", ErrInvalidShard, s.ID)
		}
		if s.Bytes < 0 || s.Pins < 0 {
			return nil, nil, nil, nil, fmt.Errorf("%w: shard %d has negative bytes or pins", ErrInvalidShard, s.ID)
		}
		if sumBytes += s.Bytes; sumBytes > math.MaxInt64/MaxRepl {
			return nil, nil, nil, nil, fmt.Errorf("%w: shard bytes sum overflows", ErrInvalidShard)
		}
		lo, hi := s.ReplMin, s.ReplMax
		if lo == 0 {
			lo = in.Params.ReplMin
		}
		if hi == 0 {
			hi = max(in.Params.ReplMax, lo)
		}
		if lo < 1 || lo > MaxRepl || hi < lo || hi > MaxRepl {
			return nil, nil, nil, nil, fmt.Errorf("%w: shard %d replication %d..%d out of range", ErrInvalidShard, s.ID, s.ReplMin, s.ReplMax)
		}
		shs[i] = shard{id: s.ID, bytes: s.Bytes, pins: s.Pins, min: int32(lo), max: int32(hi)}
	}
	slices.SortFunc(shs, func(a, b shard) int { return cmpInt64(a.id, b.id) })
	for i := 1; i < len(shs); i++ {
		if shs[i].id == shs[i-1].id {
			return nil, nil, nil, nil, fmt.Errorf("%w: duplicate shard ID %d", ErrInvalidShard, shs[i].id)
		}
	}

	probs, err := applyOverrides(in.Overrides, sorted, shs)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return sorted, shs, domainNames, probs, nil
}

// applyOverrides resolves overrides to member indexes. Malformed overrides
// are errors; overrides that name unknown shards or peers are problems.
func applyOverrides(ovs []Override, ms []member, shs []shard) ([]Problem, error) {
	if len(ovs) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(ovs)
	slices.SortStableFunc(sorted, func(a, b Override) int { return cmpInt64(a.Shard, b.Shard) })
	var probs []Problem
	for k, ov := range sorted {
		if k > 0 && sorted[k-1].Shard == ov.Shard {
			return nil, fmt.Errorf("%w: two overrides for shard %d", ErrInvalidOverride, ov.Shard)
		}
		if len(ov.Pin) > MaxRepl {
			return nil, fmt.Errorf("%w: shard %d pins %d peers (max %d)", ErrInvalidOverride, ov.Shard, len(ov.Pin), MaxRepl)
		}
		si, ok := slices.BinarySearchFunc(shs, ov.Shard, func(s shard, id int64) int { return cmpInt64(s.id, id) })
		if !ok {
			probs = append(probs, Problem{Shard: ov.Shard, Err: ErrUnknownShard})
			continue
		}
		s := &shs[si]
		s.ov = &override{}
		for _, p := range ov.Exclude {
			mi, ok := findPeer(ms, p)
			if !ok {
				probs = append(probs, Problem{Shard: ov.Shard, Peer: p, Err: ErrUnknownPeer})
				continue
			}
			s.ov.exclude = append(s.ov.exclude, int32(mi))
		}
		slices.Sort(s.ov.exclude)
		s.ov.exclude = slices.Compact(s.ov.exclude)
		for _, p := range ov.Pin {
			mi, ok := findPeer(ms, p)
			switch {
			case !ok:
				probs = append(probs, Problem{Shard: ov.Shard, Peer: p, Err: ErrUnknownPeer})
			case slices.Contains(s.ov.exclude, int32(mi)):
				probs = append(probs, Problem{Shard: ov.Shard, Peer: p, Err: ErrPinExcluded})
			case slices.Contains(s.ov.pin, int32(mi)):
				// a repeated pin counts once
			default:
				s.ov.pin = append(s.ov.pin, int32(mi))
			}
		}
	}
	return probs, nil
}

func findPeer(ms []member, p []byte) (int, bool) {
	return slices.BinarySearchFunc(ms, p, func(m member, p []byte) int { return bytes.Compare(m.peer, p) })
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
