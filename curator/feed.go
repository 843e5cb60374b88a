package curator

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/store"
)

// feedLoop hands the CRDT heads of every head another curator signed to
// this replica, so pins added at any curator reach every curator even when
// their CRDT broadcast was missed (for instance, sent before the trust set
// that admits its author reached us).
func (d *Daemon) feedLoop(ctx context.Context) error {
	netDAG := dag.NewStore(store.Network{BS: d.node.BlockService()})
	for {
		changed := d.heads.Changed()
		if v, ok := d.heads.Newest(); ok && peer.ID(v.Sig.Signer) != d.id {
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			ps, err := netDAG.Pinset(fctx, v.Head.Pinset)
			cancel()
			if err == nil && len(ps.CRDTHeads) > 0 {
				err = d.pins.Feed(ctx, ps.CRDTHeads)
			}
			if err != nil && ctx.Err() == nil {
				d.log.Warn("feed pinset of head", "head", v.CID, "signer", peer.ID(v.Sig.Signer), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
