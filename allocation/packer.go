package allocation

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Shard target bounds of DefaultTarget when none are given.
const (
	DefaultTargetMin = int64(1) << 30 // 1 GiB
	DefaultTargetMax = int64(1) << 36 // 64 GiB
)

// DefaultTarget returns the default shard target size for the given pledges:
// the median pledge / 200, clamped to [lo, hi]. lo or hi of 0 mean
// DefaultTargetMin and DefaultTargetMax; small demo clusters pass smaller
// bounds (e.g. 1 MiB). With no pledges it returns lo.
func DefaultTarget(pledges []int64, lo, hi int64) int64 {
	if lo <= 0 {
		lo = DefaultTargetMin
	}
	if hi <= 0 {
		hi = DefaultTargetMax
	}
	hi = max(hi, lo)
	if len(pledges) == 0 {
		return lo
	}
	s := slices.Clone(pledges)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = s[len(s)/2-1]/2 + s[len(s)/2]/2
	}
	return min(max(med/200, lo), hi)
}

// ErrInvalidPin is returned for a pin the packer cannot place.
var ErrInvalidPin = errors.New("allocation: invalid pin")

// Pin is a pin to be placed in a shard: its CID bytes and size in bytes.
type Pin struct {
	CID  []byte
	Size int64
}

// Oversize is the warning for a pin larger than the shard target: it is
// stored as a shard of its own, which one member must have room for.
type Oversize struct {
	CID    []byte
	Size   int64
	Target int64
	Shard  int64
}

func (o Oversize) String() string {
	return fmt.Sprintf("pin %x is %d bytes, larger than the shard target of %d bytes: it gets shard %d of its own",
		o.CID, o.Size, o.Target, o.Shard)
}

// Packer assigns new pins to shards without touching existing ones: it
// fills the newest shard up to the target, then opens the next ID. A pin
// larger than the target gets a shard of its own and an Oversize warning.
// The curator creates one per batch of additions from the current shards
// and records each pin's shard ID in the pin record.
type Packer struct {
	target  int64
	next    int64 // ID the next new shard gets
	open    *Shard
	touched map[int64]*Shard
}

// NewPacker returns a packer that continues after existing (the shards with
// their current fill). Only the newest shard (highest ID) can receive more
// pins, and only while it is below target.
func NewPacker(target int64, existing []Shard) (*Packer, error) {
	if target <= 0 {
		return nil, fmt.Errorf("%w: allocation.shard_target must be positive, got %d", ErrInvalidParams, target)
	}
	p := &Packer{target: target, touched: map[int64]*Shard{}}
	newest := -1
	for i, s := range existing {
		if s.ID < 0 || s.Bytes < 0 || s.Pins < 0 {
			return nil, fmt.Errorf("%w: shard %d bytes %d pins %d", ErrInvalidShard, s.ID, s.Bytes, s.Pins)
		}
		if newest < 0 || s.ID > existing[newest].ID {
			newest = i
		}
	}
	if newest >= 0 {
		s := existing[newest]
		if s.ID == math.MaxInt64 {
			return nil, fmt.Errorf("%w: shard IDs exhausted", ErrInvalidShard)
		}
		p.next = s.ID + 1
		if s.Bytes < target {
			p.open = &s
		}
	}
	return p, nil
}

// Add places one pin and returns its shard ID, and a warning when the pin
// is larger than the target.
func (p *Packer) Add(pin Pin) (int64, *Oversize, error) {
	if pin.Size < 0 {
		return 0, nil, fmt.Errorf("%w: pin %x has negative size %d", ErrInvalidPin, pin.CID, pin.Size)
	}
	if pin.Size > p.target {
		s, err := p.newShard()
		if err != nil {
			return 0, nil, err
		}
		p.put(s, pin.Size)
		p.open = nil // an oversize shard is full from the start
		return s.ID, &Oversize{CID: pin.CID, Size: pin.Size, Target: p.target, Shard: s.ID}, nil
	}
	if p.open == nil || p.open.Bytes+pin.Size > p.target {
		s, err := p.newShard()
		if err != nil {
			return 0, nil, err
		}
		p.open = s
	}
	p.put(p.open, pin.Size)
	return p.open.ID, nil, nil
}

func (p *Packer) newShard() (*Shard, error) {
	if p.next == math.MaxInt64 {
		return nil, fmt.Errorf("%w: shard IDs exhausted", ErrInvalidShard)
	}
	s := &Shard{ID: p.next}
	p.next++
	return s, nil
}

func (p *Packer) put(s *Shard, size int64) {
	if t, ok := p.touched[s.ID]; ok {
		s = t
	} else {
		p.touched[s.ID] = s
	}
	s.Bytes += size
	s.Pins++
}

// Touched returns, by ascending ID, every shard that received pins, with
// its new fill; ReplMin and ReplMax are left 0 (the cluster defaults).
func (p *Packer) Touched() []Shard {
	out := make([]Shard, 0, len(p.touched))
	for _, s := range p.touched {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Shard) int { return cmpInt64(a.ID, b.ID) })
	return out
}
