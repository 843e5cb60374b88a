package allocation

import (
	"encoding/binary"
	"testing"
)

// fuzzInput decodes arbitrary bytes into a small Input.
func fuzzInput(data []byte) Input {
	next := func() uint64 {
		if len(data) == 0 {
			return 0
		}
		var b [8]byte
		n := copy(b[:], data)
		data = data[n:]
		return binary.LittleEndian.Uint64(b[:])
	}
	in := Input{Algorithm: Algorithm, AlgVer: Version}
	in.Params = Params{ReplMin: int64(next() % 5), ReplMax: int64(next() % 6), ShardTarget: 1 + int64(next()%1000), Epsilon: int64(next() % 200_000)}
	in.AlgVer = 1 + in.Params.Epsilon%Version // every version, without consuming input
	nm := int(next() % 12)
	for i := range nm {
		v := next()
		m := Member{Peer: []byte{byte(i), byte(v)}, Capacity: int64(v>>8) % 5000}
		if v&1 == 1 {
			seq := int64(v >> 60)
			m.Offline = &seq
		}
		if v&6 != 0 {
			m.Domain = string(rune('a' + (v>>1)&3))
		}
		if v>>62 == 3 {
			m.Capacity = -1 // invalid on purpose, sometimes
		}
		in.Members = append(in.Members, m)
	}
	ns := int(next() % 40)
	for range ns {
		v := next()
		in.Shards = append(in.Shards, Shard{ID: int64(v % 9000), Bytes: int64(v>>16) % 700,
			ReplMin: int64(v>>40) % 4, ReplMax: int64(v>>44) % 5})
	}
	no := int(next() % 4)
	for range no {
		v := next()
		ov := Override{Shard: int64(v % 9000)}
		for k := range int(v>>20) % 3 {
			ov.Pin = append(ov.Pin, []byte{byte(k + int(v>>24)), byte(v >> 32)})
		}
		for k := range int(v>>28) % 3 {
			ov.Exclude = append(ov.Exclude, []byte{byte(k + int(v>>36)), byte(v >> 40)})
		}
		in.Overrides = append(in.Overrides, ov)
	}
	return in
}

func FuzzCompute(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00d\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(make([]byte, 400))
	seed := make([]byte, 600)
	for i := range seed {
		seed[i] = byte(i*131 + 7)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		p, err := Compute(in)
		if err != nil {
			return
		}
		checkInvariants(t, in, p)
		want, err := reference(in)
		if err != nil {
			t.Fatalf("reference rejects what Compute accepts: %v", err)
		}
		for k := range p.Len() {
			sh := p.Shard(k)
			if len(sh.Holders) != len(want[sh.ID]) {
				t.Fatalf("shard %d: %d holders, reference %d", sh.ID, len(sh.Holders), len(want[sh.ID]))
			}
			for j := range sh.Holders {
				if string(sh.Holders[j]) != string(want[sh.ID][j]) {
					t.Fatalf("shard %d: holders differ from the reference", sh.ID)
				}
			}
		}
	})
}

func FuzzPacker(f *testing.F) {
	f.Add(int64(100), []byte{1, 2, 3, 200, 50, 50})
	f.Fuzz(func(t *testing.T, target int64, sizes []byte) {
		existing := []Shard{{ID: 3, Bytes: 40, Pins: 2}}
		p, err := NewPacker(target, existing)
		if err != nil {
			if target > 0 {
				t.Fatalf("NewPacker(%d): %v", target, err)
			}
			return
		}
		last := int64(3)
		for _, b := range sizes {
			size := int64(b) * 3
			id, warn, err := p.Add(Pin{CID: []byte{b}, Size: size})
			if err != nil {
				t.Fatal(err)
			}
			if id < last || id > last+1 {
				t.Fatalf("shard %d after %d: must be the newest or the next", id, last)
			}
			last = id
			if (warn != nil) != (size > target) {
				t.Fatalf("size %d target %d: warning %v", size, target, warn)
			}
		}
		for _, s := range p.Touched() {
			if s.Bytes > target && s.Pins != 1 {
				t.Fatalf("shard %d holds %d bytes in %d pins, over target %d", s.ID, s.Bytes, s.Pins, target)
			}
		}
	})
}
