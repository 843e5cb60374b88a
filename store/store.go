// Package store opens a process's local storage: one badger4 datastore
// holding everything (the head DAG, the CRDT, indexes, content blocks)
// and the boxo block store on it.
//
// Every badger and cache setting of both daemons is here. The budget, in
// memory a daemon needs whatever its pinset size (measured at 1M pins, see
// docs/scale.md):
//
//   - memtables: memTables × memTableSize = 3 × 4 MiB. Writes land in the
//     active one; full ones wait for their flush to level 0. The flush
//     builds the level-0 table in memory from an allocator that starts at
//     2 MiB and doubles (2 + 4 MiB holds a 4 MiB memtable's table, where
//     8 MiB memtables needed 2 + 4 + 8), and badger keeps up to eight used
//     allocators, at the size they grew to, for its next builders: so the
//     memtable size sets most of the builders' memory (docs/scale.md).
//   - block cache: 16 MiB of uncompressed table blocks, for reads.
//   - index cache: 16 MiB of table indexes and bloom filters. Without it
//     badger keeps every table's index in memory, which grows with the store.
//   - compaction: badger builds each output table in memory before writing
//     it, at twice the table size, with several builders per compaction.
//     Tables stay baseTableSize (1 MiB) at every level (multiplier 1) and
//     two compactors run (badger's least), so the builders need tens of MiB
//     instead of hundreds at the deeper levels of a large store.
//
// Disk: values of 64 KiB and more (content chunks, CRDT deltas) go to the
// value log, in files of 64 MiB; keys, pins and index entries stay in the
// LSM tree, where compaction drops what was deleted. Value-log GC runs on
// go-ds-badger4's schedule (every 15 minutes, then every 10 s while a
// round reclaims something): it rewrites a log file once compaction has
// found 20 % of it dead, and deletes the old file. Small files make that
// possible at all (the log being written is never collected) and keep
// each rewrite short.
//
// A full disk: badger writes through sparse memory maps, so a daemon
// keeps them allocated and a reserve of free space (disk.go).
//
// Badger maps its table files into memory too. Those pages are the file
// cache: counted in RSS (RssFile), shared with the kernel's page cache and
// dropped under memory pressure, unlike the figures above (RssAnon).
package store

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/ipfs/boxo/blockstore"
	badger "github.com/ipfs/go-ds-badger4"

	"github.com/pinfold/pinfold/dag"
)

const (
	memTableSize        = 4 << 20
	memTables           = 3
	blockCacheSize      = 16 << 20
	indexCacheSize      = 16 << 20
	baseTableSize       = 1 << 20
	tableSizeMultiplier = 1
	compactors          = 2
	valueThreshold      = 64 << 10
	valueLogFileSize    = 64 << 20
	// Badger's defaults, set here because the disk budget (disk.go)
	// depends on them.
	numLevelZeroTables  = 5
	baseLevelSize       = 10 << 20
	levelSizeMultiplier = 10
)

// Store is a process's badger4 datastore and the block store on it.
type Store struct {
	Datastore *badger.Datastore
	Blocks    blockstore.Blockstore
	DAG       *dag.Store
}

// Open opens (creating if needed) the datastore in dir, with badger's own
// logging silenced and the memory budget above. go-ds-badger4 runs
// value-log GC on its schedule (every 15 minutes, rewriting files at least
// 20 % garbage).
func Open(dir string) (*Store, error) { return open(dir, nil) }

// open is Open with tune, if not nil, applied last (tests shrink files).
func open(dir string, tune func(*badger.Options)) (*Store, error) {
	opts := badger.DefaultOptions
	opts.Options = opts.Options.
		WithLogger(nil).
		WithMemTableSize(memTableSize).
		WithNumMemtables(memTables).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithBaseTableSize(baseTableSize).
		WithNumCompactors(compactors).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(valueLogFileSize).
		WithNumLevelZeroTables(numLevelZeroTables).
		WithBaseLevelSize(baseLevelSize).
		WithLevelSizeMultiplier(levelSizeMultiplier).
		WithCompression(options.None)
	opts.Options.TableSizeMultiplier = tableSizeMultiplier
	if tune != nil {
		tune(&opts)
	}
	d, err := badger.NewDatastore(dir, &opts)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", dir, err)
	}
	bs := blockstore.NewBlockstore(d)
	return &Store{Datastore: d, Blocks: bs, DAG: dag.NewStore(bs)}, nil
}

// CollectGarbage runs value-log GC rounds until one reclaims nothing, as
// the schedule does.
func (s *Store) CollectGarbage(ctx context.Context) error {
	if err := s.Datastore.CollectGarbage(ctx); err != nil {
		return fmt.Errorf("value-log GC: %w", err)
	}
	return nil
}

// Close closes the datastore.
func (s *Store) Close() error { return s.Datastore.Close() }
