package follower

import (
	"github.com/pinfold/pinfold/metrics"
	"github.com/pinfold/pinfold/p2p"
)

// samples are the follower's gauges and totals at a scrape, read from its
// status (documented in docs/metrics.md).
func (d *Daemon) samples() []metrics.Sample {
	s := d.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	out := []metrics.Sample{
		{Name: "pins", Help: "Pins in the replicated pinset.", Value: float64(s.Pinset.Pins)},
		{Name: "pinset_bytes", Help: "Bytes of the pins in the pinset, as they are declared.", Value: float64(s.Pinset.Bytes)},
		{Name: "pinset_caught_up", Help: "1 when the pinset replica holds the newest verified head's pinset.", Value: b(s.Pinset.CaughtUp)},
		{Name: "pledged_bytes", Help: "Bytes this follower donates.", Value: float64(s.Pledged)},
		{Name: "assigned_bytes", Help: "Bytes of the shards the newest head assigns to this follower.", Value: float64(s.Assigned)},
		{Name: "stored_bytes", Help: "Bytes of the pins stored completely.", Value: float64(s.Stored)},
		{Name: "free_bytes", Help: "Free bytes on the disk holding the store.", Value: float64(s.Free)},
		{Name: "peers", Help: "Connected libp2p peers.", Value: float64(s.Peers)},
		{Name: "acks_pending", Help: "ACKs that no signed head records yet.", Value: float64(s.AcksPending)},
		{Name: "audits_passed_total", Help: "Audits of this follower's copies that signed heads record as passed.", Value: float64(s.Audits.Passes), Counter: true},
		{Name: "audits_failed_total", Help: "Audits of this follower's copies that signed heads record as failed.", Value: float64(s.Audits.Fails), Counter: true},
		{Name: "disk_paused", Help: "1 while fetching is paused for disk space.", Value: b(s.DiskPaused != "")},
		{Name: "disk_pauses_total", Help: "Times fetching paused for disk space.", Value: float64(s.DiskPauses), Counter: true},
		{Name: "disk_reserve_bytes", Help: "Free space held back in the data folder for badger to finish its writes on a full disk.", Value: float64(s.DiskReserve)},
		{Name: "fetch_renewals_total", Help: "Shard fetches that stalled and asked every peer again.", Value: float64(s.FetchRenewals), Counter: true},
	}
	reachable := 0
	for _, c := range s.Curators {
		if c.Connected {
			reachable++
		}
	}
	out = append(out, metrics.Sample{Name: "curators_connected", Help: "Curators of the trust set this follower is connected to.", Value: float64(reachable)})
	if s.Head != nil {
		out = append(out,
			metrics.Sample{Name: "head_seq", Help: "Sequence number of the newest verified head.", Value: float64(s.Head.Seq)},
			metrics.Sample{Name: "head_age_seconds", Help: "Age of the newest verified head, from its signed time.", Value: d.now().Sub(s.Head.Time).Seconds()})
	}
	byState := map[string]int{ShardQueued: 0, ShardFetching: 0, ShardStored: 0, ShardReleasing: 0}
	var fetched int64
	for _, r := range s.Shards {
		byState[r.State]++
		if r.State == ShardFetching {
			fetched += r.Fetched
		}
	}
	for state, n := range byState {
		out = append(out, metrics.Sample{Name: "shards", Help: "This follower's shards by state.", Labels: map[string]string{"state": state}, Value: float64(n)})
	}
	out = append(out, metrics.Sample{Name: "fetching_bytes", Help: "Bytes fetched so far of the shards being fetched.", Value: float64(fetched)})
	for dir, tr := range map[string]p2p.Traffic{"up": s.Bandwidth.Up, "down": s.Bandwidth.Down} {
		l := map[string]string{"direction": dir}
		out = append(out,
			metrics.Sample{Name: "bandwidth_bytes_per_second", Help: "Bitswap bytes per second over the last 10 s, sent (up) or received (down), framing and wants included.", Labels: l, Value: tr.Rate},
			metrics.Sample{Name: "bandwidth_limit_bytes_per_second", Help: "Bitswap bandwidth limit (max_upload, max_download); 0 is unlimited.", Labels: l, Value: float64(tr.Limit)},
			metrics.Sample{Name: "bandwidth_bytes_total", Help: "Bitswap bytes sent (up) or received (down), framing and wants included.", Labels: l, Value: float64(tr.Total), Counter: true})
	}
	received, sent := d.node.BitswapTraffic()
	return append(out, metrics.Shared(received, sent, s.Rejected)...)
}
