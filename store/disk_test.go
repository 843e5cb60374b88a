package store

import "testing"

func TestDiskReserve(t *testing.T) {
	const mib = 1 << 20
	// 3 memtables of 4 MiB flushed, a WAL of 8 MiB, a value log of
	// 128 MiB, compactions of 5 × 4 + 10 + 11 × 1 MiB, DISCARD doubling.
	if want := int64((12 + 8 + 128 + 41 + 2) * mib); DiskReserve != want {
		t.Fatalf("DiskReserve = %d MiB, want %d MiB", DiskReserve/mib, want/mib)
	}
	for _, c := range []struct {
		name string
		log  bool
		size int64
	}{
		{"00001.mem", true, 8 * mib},
		{"000003.vlog", true, 128 * mib},
		{"DISCARD", true, 1 * mib},
		{"000012.sst", false, 0},
		{"MANIFEST", false, 0},
		{"KEYREGISTRY", false, 0},
		{"LOCK", false, 0},
		{"mem", false, 0},
	} {
		if got := MappedLog(c.name); got != c.log {
			t.Errorf("MappedLog(%q) = %v, want %v", c.name, got, c.log)
		}
		if got := MappedLogSize(c.name); got != c.size {
			t.Errorf("MappedLogSize(%q) = %d, want %d", c.name, got, c.size)
		}
	}
}
