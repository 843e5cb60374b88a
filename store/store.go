// Package store opens a process's local storage: one badger4 datastore
// holding everything (the head DAG, the CRDT, indexes, content blocks)
// and the boxo block store on it.
//
// Every badger and cache setting of both daemons is here. The budget, in
// memory a daemon needs whatever its pinset size (measured at 1M pins, see
// docs/scale.md):
//
//   - memtables: memTables × memTableSize = 3 × 16 MiB. Writes land in the
//     active one; full ones wait for their flush to level 0.
//   - block cache: 16 MiB of uncompressed table blocks, for reads.
//   - index cache: 16 MiB of table indexes and bloom filters. Without it
//     badger keeps every table's index in memory, which grows with the store.
//   - compaction: badger builds each output table in memory before writing
//     it, at twice the table size, with several builders per compaction.
//     Tables stay baseTableSize (2 MiB) at every level (multiplier 1) and
//     two compactors run (badger's least), so the builders need tens of MiB
//     instead of hundreds at the deeper levels of a large store.
//
// Badger maps its table files into memory too. Those pages are the file
// cache: counted in RSS (RssFile), shared with the kernel's page cache and
// dropped under memory pressure, unlike the figures above (RssAnon).
package store

import (
	"fmt"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/ipfs/boxo/blockstore"
	badger "github.com/ipfs/go-ds-badger4"

	"github.com/pinfold/pinfold/dag"
)

const (
	memTableSize        = 8 << 20
	memTables           = 3
	blockCacheSize      = 16 << 20
	indexCacheSize      = 16 << 20
	baseTableSize       = 1 << 20
	tableSizeMultiplier = 1
	compactors          = 2
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
func Open(dir string) (*Store, error) {
	opts := badger.DefaultOptions
	opts.Options = opts.Options.
		WithLogger(nil).
		WithMemTableSize(memTableSize).
		WithNumMemtables(memTables).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithBaseTableSize(baseTableSize).
		WithNumCompactors(compactors).
		WithCompression(options.None)
	opts.Options.TableSizeMultiplier = tableSizeMultiplier
	d, err := badger.NewDatastore(dir, &opts)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", dir, err)
	}
	bs := blockstore.NewBlockstore(d)
	return &Store{Datastore: d, Blocks: bs, DAG: dag.NewStore(bs)}, nil
}

// Close closes the datastore.
func (s *Store) Close() error { return s.Datastore.Close() }
