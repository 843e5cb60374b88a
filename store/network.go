package store

import (
	"context"

	"github.com/ipfs/boxo/blockservice"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Network reads blocks through a block service: from the local block store
// when present, otherwise from peers (bitswap), storing what it fetched.
// It satisfies dag.Blocks, so the head DAG can be read from the network.
type Network struct{ BS blockservice.BlockService }

// Get returns block c, fetching it from peers if needed; ctx bounds the wait.
func (n Network) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return n.BS.GetBlock(ctx, c)
}

// Put stores b locally (and announces it to bitswap peers that want it).
func (n Network) Put(ctx context.Context, b blocks.Block) error {
	return n.BS.AddBlock(ctx, b)
}
