// Package warm imports the chosen dependencies so their builds are cached. Temporary.
package warm

import (
	_ "github.com/charmbracelet/bubbletea"
	_ "github.com/ipfs/boxo/bitswap"
	_ "github.com/ipfs/boxo/blockservice"
	_ "github.com/ipfs/boxo/blockstore"
	_ "github.com/ipfs/boxo/ipns"
	_ "github.com/ipfs/boxo/ipld/unixfs/importer"
	_ "github.com/ipfs/go-datastore"
	_ "github.com/ipfs/go-ds-badger4"
	_ "github.com/ipfs/go-ds-crdt"
	_ "github.com/ipld/go-ipld-prime/node/bindnode"
	_ "github.com/ipld/go-ipld-prime/codec/dagcbor"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-pubsub"
)
