package follower

import (
	"context"

	"github.com/ipfs/go-cid"
)

// provideLoop announces, in the DHTs the node runs (the cluster's own,
// and the other one when the volunteer turned it on), the roots of the
// pins of every stored shard, and stops announcing those of released
// shards. Only roots are announced (a holder of a root serves its whole
// DAG over bitswap); the node's sweeping provider batches them by
// keyspace region and reannounces them on its own schedule. It does
// nothing when no DHT runs, or when the content lives in a kubo daemon
// (kubo announces its own blocks). It returns when ctx ends.
func (d *Daemon) provideLoop(ctx context.Context) error {
	if !d.node.Providing() || d.l.Config.IPFSAPI != "" {
		return nil
	}
	announced := map[cid.Cid]struct{}{}
	for {
		if err := d.syncProvides(announced); err != nil {
			d.log.Warn("announce held roots", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.shards.held:
		}
	}
}

// syncProvides brings the announced set to the stored shards' roots.
func (d *Daemon) syncProvides(announced map[cid.Cid]struct{}) error {
	want := d.heldRoots()
	var add, drop []cid.Cid
	for c := range want {
		if _, ok := announced[c]; !ok {
			add = append(add, c)
		}
	}
	for c := range announced {
		if _, ok := want[c]; !ok {
			drop = append(drop, c)
		}
	}
	if len(drop) > 0 {
		if err := d.node.StopProviding(drop...); err != nil {
			return err
		}
		for _, c := range drop {
			delete(announced, c)
		}
	}
	if len(add) > 0 {
		if err := d.node.Provide(add...); err != nil {
			return err
		}
		for _, c := range add {
			announced[c] = struct{}{}
		}
		d.log.Info("announcing held roots", "new", len(add), "dropped", len(drop), "total", len(announced))
	}
	return nil
}

// heldRoots returns the CIDs of the pins of the stored shards.
func (d *Daemon) heldRoots() map[cid.Cid]struct{} {
	s := d.shards
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[cid.Cid]struct{}{}
	for _, rec := range s.records {
		if !rec.Stored {
			continue
		}
		for _, p := range rec.Pins {
			if c, err := cid.Decode(p); err == nil {
				out[c] = struct{}{}
			}
		}
	}
	return out
}
