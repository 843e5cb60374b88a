// Package assign computes the allocation plan of a verified head: it reads
// the head's members, shards and allocation blocks and runs the pure
// allocation engine on them, so a follower and a curator derive the same
// map from the same signed head.
package assign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/multiformats/go-multihash"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/dag"
)

// Inputs are the signed inputs of a head's allocation.
type Inputs struct {
	Members    []dag.Member
	Shards     []dag.Shard
	Allocation dag.Allocation
}

// Read loads the allocation inputs of head h through st (locally or from
// the network).
func Read(ctx context.Context, st *dag.Store, h dag.Head) (Inputs, error) {
	var in Inputs
	for m, err := range st.Members(ctx, h.Members) {
		if err != nil {
			return in, fmt.Errorf("read members: %w", err)
		}
		in.Members = append(in.Members, m)
	}
	ps, err := st.Pinset(ctx, h.Pinset)
	if err != nil {
		return in, fmt.Errorf("read pinset: %w", err)
	}
	for s, err := range st.Shards(ctx, ps.Shards) {
		if err != nil {
			return in, fmt.Errorf("read shards: %w", err)
		}
		in.Shards = append(in.Shards, s)
	}
	if in.Allocation, err = st.Allocation(ctx, h.Allocation); err != nil {
		return in, fmt.Errorf("read allocation: %w", err)
	}
	return in, nil
}

// Input converts signed inputs to the allocation engine's.
func (in Inputs) Input() allocation.Input {
	a := in.Allocation
	out := allocation.Input{
		Algorithm: a.Algorithm,
		AlgVer:    a.AlgVer,
		Params: allocation.Params{
			ReplMin: a.Params.ReplMin, ReplMax: a.Params.ReplMax,
			ShardTarget: a.Params.ShardTarget, Epsilon: a.Params.Epsilon,
		},
		Members:   make([]allocation.Member, 0, len(in.Members)),
		Shards:    make([]allocation.Shard, 0, len(in.Shards)),
		Overrides: make([]allocation.Override, 0, len(a.Overrides)),
	}
	for _, m := range in.Members {
		out.Members = append(out.Members, allocation.Member{Peer: m.Peer, Capacity: m.Capacity, Domain: m.Domain, Offline: m.Offline})
	}
	for _, s := range in.Shards {
		out.Shards = append(out.Shards, allocation.Shard{ID: s.ID, Bytes: s.Bytes, Pins: s.Pins, ReplMin: s.ReplMin, ReplMax: s.ReplMax})
	}
	for _, o := range a.Overrides {
		out.Overrides = append(out.Overrides, allocation.Override{Shard: o.Shard, Pin: o.Pin, Exclude: o.Exclude})
	}
	return out
}

// Plan reads the inputs of head h and computes its plan.
func Plan(ctx context.Context, st *dag.Store, h dag.Head) (*allocation.Plan, Inputs, error) {
	in, err := Read(ctx, st, h)
	if err != nil {
		return nil, in, err
	}
	p, err := allocation.Compute(in.Input())
	if err != nil {
		return nil, in, fmt.Errorf("compute allocation: %w", err)
	}
	return p, in, nil
}

// PinRef is what a shard digest covers of one pin.
type PinRef struct {
	CID  []byte // binary CID
	Size int64
}

// Digest is the shard content digest an ACK carries: a sha2-256 multihash
// over the shard's pins sorted by CID bytes, each as its binary CID
// prefixed by its length (uvarint) followed by its size (uvarint). Any
// peer holding the pinset computes the same digest for the same shard.
func Digest(pins []PinRef) []byte {
	sorted := slices.Clone(pins)
	slices.SortFunc(sorted, func(a, b PinRef) int { return bytes.Compare(a.CID, b.CID) })
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	for _, p := range sorted {
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(p.CID)))])
		h.Write(p.CID)
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(max(p.Size, 0)))])
	}
	mh, err := multihash.Encode(h.Sum(nil), multihash.SHA2_256)
	if err != nil {
		panic(fmt.Sprintf("assign: encode sha2-256 multihash: %v", err)) // fixed code and length: cannot fail
	}
	return mh
}
