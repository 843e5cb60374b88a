package allocation

import (
	"errors"
	"testing"
)

func TestDefaultTarget(t *testing.T) {
	const GiB, MiB, TiB = int64(1) << 30, int64(1) << 20, int64(1) << 40
	tests := []struct {
		name    string
		pledges []int64
		lo, hi  int64
		want    int64
	}{
		{"none", nil, 0, 0, GiB},
		{"median 1 TiB", []int64{TiB / 2, TiB, 4 * TiB}, 0, 0, TiB / 200},
		{"clamped low", []int64{10 * GiB}, 0, 0, GiB},
		{"clamped high", []int64{100 * TiB}, 0, 0, 64 * GiB},
		{"even count", []int64{2 * TiB, 4 * TiB}, 0, 0, 3 * TiB / 200},
		{"demo", []int64{40 * MiB, 100 * MiB, 160 * MiB}, MiB, 64 * MiB, MiB},
		{"demo larger", []int64{400 * MiB, 1000 * MiB}, MiB, 64 * MiB, 700 * MiB / 200},
	}
	for _, tt := range tests {
		if got := DefaultTarget(tt.pledges, tt.lo, tt.hi); got != tt.want {
			t.Errorf("%s: DefaultTarget = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPacker(t *testing.T) {
	existing := []Shard{{ID: 0, Bytes: 100, Pins: 4}, {ID: 1, Bytes: 60, Pins: 2}}
	p, err := NewPacker(100, existing)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		size  int64
		shard int64
		warn  bool
	}{
		{30, 1, false}, // fills the newest shard
		{10, 1, false}, // exactly to the target
		{1, 2, false},  // full: opens shard 2
		{150, 3, true}, // oversize: a shard of its own
		{5, 4, false},  // never added to the oversize shard
		{96, 5, false}, // does not fit in 4 (5+96 > 100)
		{0, 5, false},  // empty pins cost nothing
	}
	for i, st := range steps {
		id, warn, err := p.Add(Pin{CID: []byte{byte(i)}, Size: st.size})
		if err != nil {
			t.Fatal(err)
		}
		if id != st.shard || (warn != nil) != st.warn {
			t.Fatalf("step %d (size %d): shard %d warn %v, want %d %v", i, st.size, id, warn, st.shard, st.warn)
		}
		if warn != nil && (warn.Shard != id || warn.String() == "") {
			t.Fatalf("step %d: warning %+v", i, warn)
		}
	}
	want := []Shard{{ID: 1, Bytes: 100, Pins: 4}, {ID: 2, Bytes: 1, Pins: 1}, {ID: 3, Bytes: 150, Pins: 1},
		{ID: 4, Bytes: 5, Pins: 1}, {ID: 5, Bytes: 96, Pins: 2}}
	got := p.Touched()
	if len(got) != len(want) {
		t.Fatalf("touched %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("touched[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if existing[1].Bytes != 60 {
		t.Fatalf("packer modified its input")
	}
}

func TestPackerErrors(t *testing.T) {
	if _, err := NewPacker(0, nil); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("target 0: %v", err)
	}
	if _, err := NewPacker(10, []Shard{{ID: -1}}); !errors.Is(err, ErrInvalidShard) {
		t.Errorf("negative ID: %v", err)
	}
	p, err := NewPacker(10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Add(Pin{Size: -1}); !errors.Is(err, ErrInvalidPin) {
		t.Errorf("negative size: %v", err)
	}
	if id, _, _ := p.Add(Pin{Size: 1}); id != 0 {
		t.Errorf("first shard of an empty cluster is %d, want 0", id)
	}
}
