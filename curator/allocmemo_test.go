package curator

import (
	"testing"

	"github.com/pinfold/pinfold/allocation"
)

func memoInput() allocation.Input {
	off := int64(3)
	return allocation.Input{
		Algorithm: allocation.Algorithm, AlgVer: allocation.Version,
		Params: allocation.Params{ReplMin: 1, ReplMax: 2, ShardTarget: 100, Epsilon: allocation.DefaultEpsilon},
		Members: []allocation.Member{
			{Peer: []byte("a"), Capacity: 1000}, {Peer: []byte("b"), Capacity: 1000, Domain: "x"},
			{Peer: []byte("c"), Capacity: 1000, Offline: &off},
		},
		Shards:    []allocation.Shard{{ID: 0, Bytes: 100, Pins: 1}, {ID: 1, Bytes: 100, Pins: 2}},
		Overrides: []allocation.Override{{Shard: 1, Pin: [][]byte{[]byte("a")}}},
	}
}

// TestAllocMemo: an equal input gets the memo's plan back; any change of
// any field is computed again; changing the caller's slices afterwards
// does not change what the memo compares with.
func TestAllocMemo(t *testing.T) {
	var m allocMemo
	first, err := m.compute(memoInput())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.compute(memoInput()); again != first {
		t.Fatal("an equal input was computed again")
	}
	changes := map[string]func(*allocation.Input){
		"version":      func(in *allocation.Input) { in.AlgVer = 1 },
		"params":       func(in *allocation.Input) { in.Params.ReplMax = 1 },
		"peer":         func(in *allocation.Input) { in.Members[0].Peer = []byte("d") },
		"capacity":     func(in *allocation.Input) { in.Members[1].Capacity = 999 },
		"domain":       func(in *allocation.Input) { in.Members[1].Domain = "y" },
		"offline":      func(in *allocation.Input) { in.Members[0].Offline = new(int64) },
		"offline seq":  func(in *allocation.Input) { *in.Members[2].Offline = 4 },
		"back online":  func(in *allocation.Input) { in.Members[2].Offline = nil },
		"member gone":  func(in *allocation.Input) { in.Members = in.Members[:2] },
		"shard bytes":  func(in *allocation.Input) { in.Shards[1].Bytes = 101 },
		"shard added":  func(in *allocation.Input) { in.Shards = append(in.Shards, allocation.Shard{ID: 2, Bytes: 1, Pins: 1}) },
		"no override":  func(in *allocation.Input) { in.Overrides = nil },
		"pin another":  func(in *allocation.Input) { in.Overrides[0].Pin[0] = []byte("b") },
		"exclude":      func(in *allocation.Input) { in.Overrides[0].Exclude = [][]byte{[]byte("c")} },
		"override one": func(in *allocation.Input) { in.Overrides[0].Shard = 0 },
	}
	for name, change := range changes {
		in := memoInput()
		change(&in)
		if sameInput(memoInput(), in) {
			t.Errorf("%s: sameInput says the inputs are equal", name)
		}
		var fresh allocMemo
		old, err := fresh.compute(memoInput())
		if err != nil {
			t.Fatal(err)
		}
		p, err := fresh.compute(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p == old {
			t.Errorf("%s: the changed input got the memo's plan", name)
		}
	}

	in := memoInput()
	var kept allocMemo
	p, err := kept.compute(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Members[0].Peer[0] = 'z' // the caller reuses its buffers
	*in.Members[2].Offline = 9
	in.Overrides[0].Pin[0][0] = 'z'
	if again, _ := kept.compute(memoInput()); again != p {
		t.Fatal("changing the caller's slices after compute changed the memo")
	}
}
