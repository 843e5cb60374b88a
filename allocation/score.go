package allocation

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// The ranking of members for one shard is a weighted rendezvous ranking:
// member i scores E/w_i, where w_i is its pledged capacity and E = -log2(u)
// for a pseudo-random u in (0, 1) derived from the member and the shard;
// lower scores rank first. Because E is exponentially distributed, member i
// ranks first with probability w_i / sum(w).
//
// u is stratified: shards are taken in groups of groupSize consecutive IDs,
// and within a group each member's u values fall one into each of the
// groupSize equal strata of (0, 1), the stratum of each shard chosen by a
// keyed permutation of the group. A member thus has exactly one very good
// score per group, one second-best, and so on, which roughly halves the
// variance of how many shards it wins compared with independent u values.
// Everything here is integer arithmetic, so every platform computes the same
// bits.

const (
	groupBits = 12
	groupSize = 1 << groupBits
	groupMask = groupSize - 1

	// scoreFrac is the number of fraction bits of an E value (Q6.57).
	scoreFrac = 57

	logTableBits = 12
	logFrac      = 62 // fraction bits of log table entries (Q1.62)
)

// log2Table[k] = log2(1 + k/2^logTableBits) in Q1.62, for k in [0, 2^logTableBits].
// It is computed once by integer arithmetic and never written again.
var log2Table = buildLog2Table()

func buildLog2Table() []uint64 {
	t := make([]uint64, 1<<logTableBits+1)
	for k := range t {
		t[k] = log2Q62(uint64(1)<<logFrac + uint64(k)<<(logFrac-logTableBits))
	}
	return t
}

// log2Q62 returns log2(x) for x in [1, 2] given and returned in Q1.62, by
// repeated squaring: each squaring yields one bit of the result.
func log2Q62(x uint64) uint64 {
	const one = uint64(1) << logFrac
	if x >= 2*one {
		return one
	}
	var r uint64
	for i := 1; i <= logFrac; i++ {
		hi, lo := bits.Mul64(x, x)
		x = hi<<(64-logFrac) | lo>>logFrac
		if x >= 2*one {
			x >>= 1
			r |= one >> i
		}
	}
	return r
}

// log2Frac returns log2(y) - floor(log2(y)) in Q1.62 for y > 0, and
// floor(log2(y)). The fraction is interpolated linearly between table
// entries, so it is monotone in y.
func log2Frac(y uint64) (frac uint64, exp int) {
	z := bits.LeadingZeros64(y)
	m := y << z // top bit set
	const restBits = 63 - logTableBits
	idx := (m >> restBits) & (1<<logTableBits - 1)
	rest := m & (1<<restBits - 1)
	a, b := log2Table[idx], log2Table[idx+1]
	hi, lo := bits.Mul64(b-a, rest)
	return a + (hi<<(64-restBits) | lo>>restBits), 63 - z
}

// expScore returns E = -log2(y / 2^64) in Q6.57 for y > 0: in (0, 64].
func expScore(y uint64) uint64 {
	frac, e := log2Frac(y)
	// -log2(y/2^64) = 64 - e - frac = (63 - e) + (1 - frac)
	return uint64(63-e)<<scoreFrac + (uint64(1)<<logFrac-frac)>>(logFrac-scoreFrac)
}

// stratumMinScore returns the least E any u in stratum p can have:
// -log2((p+1)/groupSize).
func stratumMinScore(p uint64) uint64 {
	if p+1 >= groupSize {
		return 0
	}
	return expScore((p + 1) << (64 - groupBits))
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// peerKey is the 64-bit hash of a peer ID used for every score of that member.
func peerKey(peer []byte) uint64 {
	s := sha256.Sum256(peer)
	return binary.BigEndian.Uint64(s[:8])
}

const (
	saltGroup  = 0x5bd1e9955bd1e995
	saltJitter = 0x9e3779b97f4a7c15
	saltRound  = 0x632be59bd9b4e019
)

// groupKey keys the stratum permutation of a member within a shard group.
func groupKey(member uint64, group uint64) uint64 {
	return mix64(member ^ mix64(group^saltGroup))
}

const halfBits = groupBits / 2
const halfMask = 1<<halfBits - 1

// permute maps a stratum to a shard offset within the group (a 4-round
// Feistel network on groupBits bits); unpermute is its inverse.
func permute(p, key uint64) uint64 {
	l, r := p>>halfBits, p&halfMask
	for i := uint64(0); i < 4; i++ {
		l, r = r, l^(mix64(r^key+i*saltRound)&halfMask)
	}
	return l<<halfBits | r
}

func unpermute(x, key uint64) uint64 {
	l, r := x>>halfBits, x&halfMask
	for i := uint64(4); i > 0; i-- {
		l, r = r^(mix64(l^key+(i-1)*saltRound)&halfMask), l
	}
	return l<<halfBits | r
}

// pairScore returns E for member key m on shard id, given the member's
// stratum p for that shard.
func pairScore(m uint64, id uint64, p uint64) uint64 {
	j := mix64(m ^ mix64(id^saltJitter))
	y := p<<(64-groupBits) | j>>groupBits
	if y == 0 {
		y = 1
	}
	return expScore(y)
}

// scoreOf returns E for member key m on shard id, computing its stratum.
func scoreOf(m uint64, id uint64) uint64 {
	g := id >> groupBits
	p := unpermute(id&groupMask, groupKey(m, g))
	return pairScore(m, id, p)
}

// lessScore reports whether ea/wa < eb/wb, exactly.
func lessScore(ea uint64, wa uint64, eb uint64, wb uint64) int {
	h1, l1 := bits.Mul64(ea, wb)
	h2, l2 := bits.Mul64(eb, wa)
	switch {
	case h1 < h2 || (h1 == h2 && l1 < l2):
		return -1
	case h1 == h2 && l1 == l2:
		return 0
	}
	return 1
}
