package follower

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// clusterKey is where a follower's datastore records the cluster it was
// first started for.
var clusterKey = ds.NewKey("/pinfold/follower/cluster")

// checkIdentity refuses a data folder whose cluster.json belongs to
// another cluster than its datastore: the datastore records the cluster
// id at the first start, and every later start compares. It also checks
// the checkpoint head, when its block is stored, against the cluster id.
func (d *Daemon) checkIdentity(ctx context.Context, clusterID peer.ID, checkpoint cid.Cid) error {
	id := d.l.Cluster.ID
	have, err := d.store.Datastore.Get(ctx, clusterKey)
	switch {
	case errors.Is(err, ds.ErrNotFound):
		if err := d.store.Datastore.Put(ctx, clusterKey, []byte(id)); err != nil {
			return fmt.Errorf("record the cluster id: %w", err)
		}
		if err := d.store.Datastore.Sync(ctx, clusterKey); err != nil {
			return fmt.Errorf("record the cluster id: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read the cluster id: %w", err)
	case string(have) != id:
		return fmt.Errorf("%w: %s names cluster %s, but this folder's datastore belongs to cluster %s (recorded at its first start): "+
			"was cluster.json copied from another folder? Put this folder's own cluster.json back, or follow the other cluster in a new folder ('follow <name> init')",
			ErrWrongCluster, d.l.Home.ClusterPath(), id, have)
	}
	b, err := d.store.Blocks.Get(ctx, checkpoint)
	if err != nil {
		return nil // not fetched yet: headsync verifies it against the id when it is
	}
	sh, err := dag.DecodeSignedHead(b.RawData())
	if err != nil {
		return fmt.Errorf("checkpoint head %s: %w", checkpoint, err)
	}
	if !bytes.Equal(sh.Head.Cluster, []byte(clusterID)) {
		return fmt.Errorf("%w: %s: the checkpoint head %s belongs to cluster %s, not %s",
			ErrWrongCluster, d.l.Home.ClusterPath(), checkpoint, ipns.NameFromPeer(peer.ID(sh.Head.Cluster)), id)
	}
	return nil
}
