package pinset

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
)

// bloom is a scalable Bloom filter over the CID keys that have an index
// entry. The index asks it before reading the datastore: most CIDs an
// import or a sync meets are new, and a datastore read of a key that does
// not exist costs about as much as one that does. No false negatives: a
// key added is always reported present. Entries are never removed (a
// removed CID just costs a read). About 10 bits per CID, 1% false
// positives; each new filter doubles the capacity of the last.
type bloom struct {
	filters []*bloomFilter
}

type bloomFilter struct {
	bits []uint64
	k    uint32 // probes per key
	n    uint64 // keys added
	cap  uint64 // keys it was sized for
}

const (
	bloomMinCap  = 1 << 16
	bloomBitsPer = 10
	bloomProbes  = 7
)

func newBloom(capacity uint64) *bloom {
	return &bloom{filters: []*bloomFilter{newBloomFilter(max(capacity, bloomMinCap))}}
}

func newBloomFilter(capacity uint64) *bloomFilter {
	words := (capacity*bloomBitsPer + 63) / 64
	return &bloomFilter{bits: make([]uint64, words), k: bloomProbes, cap: capacity}
}

func bloomHash(key string) (uint32, uint32) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	s := h.Sum64()
	return uint32(s), uint32(s>>32) | 1
}

func (f *bloomFilter) has(h1, h2 uint32) bool {
	m := uint64(len(f.bits)) * 64
	for i := uint32(0); i < f.k; i++ {
		bit := (uint64(h1) + uint64(i)*uint64(h2)) % m
		if f.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (f *bloomFilter) add(h1, h2 uint32) {
	m := uint64(len(f.bits)) * 64
	for i := uint32(0); i < f.k; i++ {
		bit := (uint64(h1) + uint64(i)*uint64(h2)) % m
		f.bits[bit/64] |= 1 << (bit % 64)
	}
	f.n++
}

// mayHave reports whether key may have been added.
func (b *bloom) mayHave(key string) bool {
	h1, h2 := bloomHash(key)
	for _, f := range b.filters {
		if f.has(h1, h2) {
			return true
		}
	}
	return false
}

// add records key.
func (b *bloom) add(key string) {
	h1, h2 := bloomHash(key)
	for _, f := range b.filters {
		if f.has(h1, h2) {
			return
		}
	}
	last := b.filters[len(b.filters)-1]
	if last.n >= last.cap {
		last = newBloomFilter(last.cap * 2)
		b.filters = append(b.filters, last)
	}
	last.add(h1, h2)
}

// marshal encodes the filter: for each filter k, n, cap, word count, words.
func (b *bloom) marshal() []byte {
	size := 0
	for _, f := range b.filters {
		size += 4*binary.MaxVarintLen64 + 8*len(f.bits)
	}
	out := make([]byte, 0, size)
	for _, f := range b.filters {
		out = binary.AppendUvarint(out, uint64(f.k))
		out = binary.AppendUvarint(out, f.n)
		out = binary.AppendUvarint(out, f.cap)
		out = binary.AppendUvarint(out, uint64(len(f.bits)))
		for _, w := range f.bits {
			out = binary.LittleEndian.AppendUint64(out, w)
		}
	}
	return out
}

var errBloom = errors.New("bad bloom filter encoding")

func unmarshalBloom(data []byte) (*bloom, error) {
	b := &bloom{}
	next := func() (uint64, error) {
		v, n := binary.Uvarint(data)
		if n <= 0 {
			return 0, errBloom
		}
		data = data[n:]
		return v, nil
	}
	for len(data) > 0 {
		var vals [4]uint64
		for i := range vals {
			v, err := next()
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		k, n, capacity, words := vals[0], vals[1], vals[2], vals[3]
		if k == 0 || k > 32 || words == 0 || words > uint64(len(data))/8 {
			return nil, errBloom
		}
		f := &bloomFilter{bits: make([]uint64, words), k: uint32(k), n: n, cap: capacity}
		for i := range f.bits {
			f.bits[i] = binary.LittleEndian.Uint64(data[8*i:])
		}
		data = data[8*words:]
		b.filters = append(b.filters, f)
	}
	if len(b.filters) == 0 {
		return nil, errBloom
	}
	return b, nil
}
