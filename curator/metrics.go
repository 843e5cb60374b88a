package curator

import (
	"github.com/pinfold/pinfold/metrics"
)

// samples are the curator's gauges and totals at a scrape, read from its
// status and member list, and the shards by status counted after each
// head (shardStatuses; documented in docs/metrics.md).
func (d *Daemon) samples() []metrics.Sample {
	s := d.Status()
	out := []metrics.Sample{
		{Name: "pins", Help: "Pins in the pinset.", Value: float64(s.Pins)},
		{Name: "pinset_bytes", Help: "Bytes of the pins in the pinset, as they are declared.", Value: float64(s.Bytes)},
		{Name: "shards", Help: "Shards in the pinset.", Value: float64(s.Shards)},
		{Name: "peers", Help: "Connected libp2p peers.", Value: float64(s.Peers)},
		{Name: "pending_log", Help: "ACKs and audit results waiting for the next head.", Value: float64(s.PendingLog)},
	}
	if s.Head != nil {
		out = append(out,
			metrics.Sample{Name: "head_seq", Help: "Sequence number of the newest head.", Value: float64(s.Head.Seq)},
			metrics.Sample{Name: "head_age_seconds", Help: "Age of the newest head, from its signed time.", Value: d.now().Sub(s.Head.Time).Seconds()})
	}
	byState := map[string]int{StatePending: 0, StateActive: 0, StateOffline: 0, StateRemoved: 0}
	for _, m := range d.members.ListAt(d.now()) {
		byState[m.State]++
	}
	for state, n := range byState {
		out = append(out, metrics.Sample{Name: "members", Help: "Members by state.", Labels: map[string]string{"state": state}, Value: float64(n)})
	}
	if counts, ok := d.ShardStatusCounts(); ok {
		for status, n := range counts {
			out = append(out, metrics.Sample{Name: "shards_by_status", Help: "Shards of the newest head by replication status (proven copies against the minimum and the target).",
				Labels: map[string]string{"status": status}, Value: float64(n)})
		}
	}
	received, sent := d.node.BitswapTraffic()
	return append(out, metrics.Shared(received, sent, s.Rejected)...)
}
