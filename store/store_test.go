package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	badger "github.com/ipfs/go-ds-badger4"
	"github.com/multiformats/go-multihash"
)

// small scales the store down to the test's few MiB: value-log files of
// 4 MiB, memtables of 1 MiB and compaction from the first level-0 table,
// so that flushes and compactions happen as they do in a large store.
func small(o *badger.Options) {
	o.Options = o.Options.WithValueLogFileSize(4 << 20).WithMemTableSize(1 << 20).
		WithNumLevelZeroTables(1).WithNumLevelZeroTablesStall(2)
}

// block returns a distinct 256-KiB block for n: a content chunk.
func block(t *testing.T, n uint64) blocks.Block {
	t.Helper()
	data := make([]byte, 256<<10)
	for i := 0; i < len(data); i += 32 {
		var seed [16]byte
		binary.BigEndian.PutUint64(seed[:8], n)
		binary.BigEndian.PutUint64(seed[8:], uint64(i))
		sum := sha256.Sum256(seed[:])
		copy(data[i:], sum[:])
	}
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, mh))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diskBytes is what dir takes on disk (allocated blocks, as du counts).
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return err
		}
		n += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func put(t *testing.T, s *Store, from, to uint64) {
	t.Helper()
	for n := from; n < to; n++ {
		if err := s.Blocks.Put(context.Background(), block(t, n)); err != nil {
			t.Fatalf("put %d: %v", n, err)
		}
	}
}

// TestChurnSettles: after churn (add 64 chunks, delete 56, add 24), the
// deleted chunks' space comes back without anyone's help: compaction drops
// the deleted entries and records how much of each value-log file is dead,
// and value-log GC (run here as its schedule runs it) rewrites the files
// mostly dead and deletes them. The store then takes at most twice what a
// fresh store holding the same 32 chunks takes. The store restarts between
// the phases, which flushes its memtable to a level-0 table, as a large
// store does whenever a memtable fills; two such tables start a compaction.
func TestChurnSettles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	restart := func(s *Store) *Store {
		t.Helper()
		if s != nil {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s, err := open(dir, small)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := restart(nil)
	put(t, s, 0, 64)
	s = restart(s)
	for n := uint64(8); n < 64; n++ {
		if err := s.Blocks.DeleteBlock(ctx, block(t, n).Cid()); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, 100, 124)
	s = restart(s)
	t.Cleanup(func() { _ = s.Close() })
	churned := diskBytes(t, dir)

	fresh := t.TempDir()
	f, err := open(fresh, small)
	if err != nil {
		t.Fatal(err)
	}
	put(t, f, 0, 8)
	put(t, f, 100, 124)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := diskBytes(t, fresh)

	// Compaction runs in the background: collect until the bound holds.
	collected := churned
	deadline := time.Now().Add(20 * time.Second)
	for rounds := 0; collected > 2*want; rounds++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds of GC the store takes %d KiB, more than twice a fresh one (%d KiB); before GC %d KiB",
				rounds, collected>>10, want>>10, churned>>10)
		}
		if err := s.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		collected = diskBytes(t, dir)
	}
	t.Logf("disk: churned %d KiB, after GC %d KiB, fresh store with the same 32 chunks %d KiB", churned>>10, collected>>10, want>>10)

	// What is live is intact.
	for _, n := range []uint64{0, 7, 100, 123} {
		b := block(t, n)
		got, err := s.Blocks.Get(ctx, b.Cid())
		if err != nil || len(got.RawData()) != len(b.RawData()) {
			t.Errorf("block %d after GC: %v", n, err)
		}
	}
	if ok, _ := s.Blocks.Has(ctx, block(t, 8).Cid()); ok {
		t.Error("a deleted block is back")
	}
}
