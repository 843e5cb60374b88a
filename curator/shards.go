package curator

import "github.com/pinfold/pinfold/pinset"

// defaultShardTarget is the target shard size when the config sets none.
const defaultShardTarget = 1 << 30

// assignShards gives each new pin a shard: pins fill the newest shard up
// to the target size, then open the next; a pin larger than the target
// gets a shard of its own. Existing pins never move. Callers hold no lock;
// the pinset's one-writer rule serialises Add, and this runs on the
// stats the replica holds now.
func (d *Daemon) assignShards(pins []pinset.Pin) {
	target := int64(d.l.Config.ShardTarget)
	if target <= 0 {
		target = defaultShardTarget
	}
	st := d.pins.Stats()
	open, fill := int64(0), int64(0)
	if n := len(st.Shards); n > 0 {
		open, fill = st.Shards[n-1].Shard, st.Shards[n-1].Bytes
	}
	for i := range pins {
		size := pins[i].Size
		switch {
		case size >= target:
			if fill > 0 {
				open++
			}
			pins[i].Shard = open
			open, fill = open+1, 0
			d.log.Warn("pin larger than the shard target gets a shard of its own", "cid", pins[i].CID, "size", size, "target", target)
		case fill+size > target:
			open++
			pins[i].Shard, fill = open, size
		default:
			pins[i].Shard = open
			fill += size
		}
	}
}
