package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/ipfs/go-cid"
)

// PinRef is one pin of a shard as the auditor's pinset lists it: its root
// CID and its size (the bytes of its DAG, as in the pin record).
type PinRef struct {
	CID  cid.Cid
	Size int64
}

// Sample picks k roots from a shard's pins, with replacement, each draw
// weighted by pin size (a pin of size 0 weighs as 1 byte), so that with
// the path rule every byte of the shard is about equally likely to be
// checked. The same root may come up more than once: its paths differ by
// their index. The pins are taken in order of CID bytes, so the order
// they are given in does not matter; rnd supplies 8 bytes per draw (a
// crypto/rand reader in production, a seeded one in tests).
func Sample(pins []PinRef, k int, rnd io.Reader) ([]cid.Cid, error) {
	if k < 1 || k > MaxSamples {
		return nil, fmt.Errorf("%w: sample %d roots, want 1..%d", ErrInvalid, k, MaxSamples)
	}
	if len(pins) == 0 {
		return nil, fmt.Errorf("%w: no pins to sample", ErrInvalid)
	}
	sorted := slices.Clone(pins)
	slices.SortFunc(sorted, func(a, b PinRef) int { return bytes.Compare(a.CID.Bytes(), b.CID.Bytes()) })
	cum := make([]uint64, len(sorted))
	var total uint64
	for i, p := range sorted {
		if !p.CID.Defined() {
			return nil, fmt.Errorf("%w: pin %d has no CID", ErrInvalid, i)
		}
		if p.Size < 0 {
			return nil, fmt.Errorf("%w: pin %s has size %d", ErrInvalid, p.CID, p.Size)
		}
		w := uint64(max(p.Size, 1))
		if total > math.MaxUint64-w {
			return nil, fmt.Errorf("%w: pin sizes overflow", ErrInvalid)
		}
		total += w
		cum[i] = total
	}
	out := make([]cid.Cid, k)
	var buf [8]byte
	for j := range out {
		if _, err := io.ReadFull(rnd, buf[:]); err != nil {
			return nil, fmt.Errorf("sample: read randomness: %w", err)
		}
		x := scale(binary.BigEndian.Uint64(buf[:]), total)
		i, _ := slices.BinarySearchFunc(cum, x, func(c, x uint64) int {
			if c <= x {
				return -1
			}
			return 1
		})
		out[j] = sorted[i].CID
	}
	return out, nil
}

// Detection is the probability that rounds audits of samples paths each
// catch a holder that deleted deletedFraction of a shard's bytes (of its
// leaves, for UnixFS: about the fraction of its blocks when leaves are of
// one size). Each path lands on a leaf chosen about in proportion to its
// bytes, independently of every other path, and a deleted block anywhere
// on the path fails it, so
//
//	P = 1 - (1 - deletedFraction)^(samplesPerRound * rounds)
//
// is a lower bound (deleting inner blocks is caught more often).
func Detection(deletedFraction float64, samplesPerRound, rounds int) float64 {
	switch {
	case deletedFraction <= 0 || samplesPerRound <= 0 || rounds <= 0:
		return 0
	case deletedFraction >= 1:
		return 1
	}
	n := float64(samplesPerRound) * float64(rounds)
	return -math.Expm1(n * math.Log1p(-deletedFraction))
}

// RoundsFor is the fewest rounds of samplesPerRound paths after which
// Detection reaches probability p (0 < p < 1), or 0 if the arguments make
// it unreachable.
func RoundsFor(deletedFraction float64, samplesPerRound int, p float64) int {
	if deletedFraction <= 0 || samplesPerRound <= 0 || p <= 0 || p >= 1 {
		return 0
	}
	if deletedFraction >= 1 {
		return 1
	}
	// (1-f)^(s*r) <= 1-p  <=>  r >= log(1-p) / (s*log(1-f))
	r := int(math.Ceil(math.Log1p(-p) / (float64(samplesPerRound) * math.Log1p(-deletedFraction))))
	for r > 1 && Detection(deletedFraction, samplesPerRound, r-1) >= p {
		r-- // guard against rounding up past the exact answer
	}
	return max(r, 1)
}
