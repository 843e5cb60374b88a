package tui

import (
	"fmt"

	"github.com/dustin/go-humanize/english"

	"github.com/pinfold/pinfold/follower"
)

// NextAction says, in a line, what a follower is doing or waiting for
// next: the head, the pinset, admission, disk space, a fetch, ACKs to be
// recorded, audits to prove its copies, or nothing.
func NextAction(s follower.Status) string {
	var fetching, queued, stored, proven int
	var fetchRow, queuedRow follower.ShardStatus
	for _, r := range s.Shards {
		switch r.State {
		case follower.ShardFetching:
			if fetching == 0 {
				fetchRow = r
			}
			fetching++
		case follower.ShardQueued:
			if queued == 0 {
				queuedRow = r
			}
			queued++
		case follower.ShardStored:
			stored++
			if r.Proven {
				proven++
			}
		}
	}
	switch {
	case s.Head == nil:
		return "waiting for a verified head from the cluster's peers"
	case !s.Pinset.CaughtUp:
		return "syncing the pinset of head seq " + fmt.Sprint(s.Head.Seq)
	case s.DiskPaused != "":
		return "waiting for disk space (" + s.DiskPaused + ")"
	case s.DiskError != "":
		return "waiting for disk space (" + s.DiskError + ")"
	case fetching > 0:
		return fmt.Sprintf("fetching shard %d (%s of %s)", fetchRow.ID, ibytes(fetchRow.Fetched), ibytes(fetchRow.Bytes))
	case queued > 0:
		if queuedRow.Error != "" {
			return fmt.Sprintf("retrying shard %d: %s", queuedRow.ID, queuedRow.Error)
		}
		return fmt.Sprintf("fetching shard %d next, %s queued", queuedRow.ID, english.Plural(queued, "shard", ""))
	case s.Why != "":
		return s.Why
	case s.AcksPending > 0:
		return fmt.Sprintf("waiting for a signed head to record %s", english.Plural(s.AcksPending, "ACK", ""))
	case stored > proven:
		return fmt.Sprintf("waiting for audits to prove %s", english.Plural(stored-proven, "copy", "copies"))
	default:
		return fmt.Sprintf("holding %s, every copy proven", english.Plural(stored, "shard", ""))
	}
}
