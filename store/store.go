// Package store opens a process's local storage: one badger4 datastore
// holding everything (the head DAG, the CRDT, indexes, content blocks)
// and the boxo block store on it.
package store

import (
	"fmt"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/ipfs/boxo/blockstore"
	badger "github.com/ipfs/go-ds-badger4"

	"github.com/pinfold/pinfold/dag"
)

// Store is a process's badger4 datastore and the block store on it.
type Store struct {
	Datastore *badger.Datastore
	Blocks    blockstore.Blockstore
	DAG       *dag.Store
}

// Open opens (creating if needed) the datastore in dir. Badger's own
// logging is silenced; its memory use is sized for a daemon that shares a
// small machine with others (several run at once in the demo).
func Open(dir string) (*Store, error) {
	opts := badger.DefaultOptions
	opts.Options = opts.Options.
		WithLogger(nil).
		WithMemTableSize(16 << 20).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).
		WithNumMemtables(3).
		WithCompression(options.None)
	d, err := badger.NewDatastore(dir, &opts)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", dir, err)
	}
	bs := blockstore.NewBlockstore(d)
	return &Store{Datastore: d, Blocks: bs, DAG: dag.NewStore(bs)}, nil
}

// Close closes the datastore.
func (s *Store) Close() error { return s.Datastore.Close() }
