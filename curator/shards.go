package curator

import (
	"context"
	"fmt"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/pinset"
)

// assignShards gives each new pin a shard (allocation.Packer): pins fill
// the newest shard up to the target, then open the next; a pin larger than
// the target gets a shard of its own, with a warning. Existing pins never
// move. Callers hold addMu, so the fill read here is the one the previous
// batch left.
func (d *Daemon) assignShards(ctx context.Context, pins []pinset.Pin) error {
	st := d.pins.Stats()
	existing := make([]allocation.Shard, 0, 1)
	if n := len(st.Shards); n > 0 {
		s := st.Shards[n-1] // only the newest shard can take more pins
		existing = append(existing, allocation.Shard{ID: s.Shard, Bytes: s.Bytes, Pins: s.Pins})
	}
	p, err := allocation.NewPacker(d.shardTarget(ctx), existing)
	if err != nil {
		return fmt.Errorf("assign shards: %w", err)
	}
	for i := range pins {
		id, over, err := p.Add(allocation.Pin{CID: pins[i].CID.Bytes(), Size: pins[i].Size})
		if err != nil {
			return fmt.Errorf("assign shard to %s: %w", pins[i].CID, err)
		}
		if over != nil {
			d.log.Warn("pin larger than the shard target gets a shard of its own",
				"cid", pins[i].CID, "size", over.Size, "target", over.Target, "shard", over.Shard)
		}
		pins[i].Shard = id
	}
	return nil
}
