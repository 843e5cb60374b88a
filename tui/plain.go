package tui

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
)

// maxPlainEvents bounds the events PrintFollower prints.
const maxPlainEvents = 20

// PrintFollower writes the follower dashboard as plain text (no escape
// codes), for --plain, pipes and logs. now dates the ages. Fetch rates
// need two polls and are left out.
func PrintFollower(w io.Writer, s follower.Status, now time.Time) error {
	s = cleanFollower(s)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	who := s.Peer
	if s.Nickname != "" {
		who = s.Nickname + " " + s.Peer
	}
	fmt.Fprintf(tw, "follower\tcluster %s, peer %s, up %s\n", clusterLabel(s), who, age(now, s.Started))
	if s.Head != nil {
		fmt.Fprintf(tw, "head\tseq %d, %s ago, signed by %s, verified\n", s.Head.Seq, age(now, s.Head.Time), s.Head.Signer)
	} else {
		fmt.Fprintf(tw, "head\tnone verified yet\n")
	}
	fmt.Fprintf(tw, "pinset\t%s (%s) in %s, %s\n", english.Plural(int(s.Pinset.Pins), "pin", ""), ibytes(s.Pinset.Bytes), english.Plural(s.Pinset.Shards, "shard", ""), PinsetState(s.Pinset))
	fmt.Fprintf(tw, "network\tpeers %d, curators %d/%d reachable\n", s.Peers, Reachable(s.Curators), len(s.Curators))
	fmt.Fprintf(tw, "storage\tpledged %s, assigned %s, stored %s, free disk %s\n", ibytes(s.Pledged), ibytes(s.Assigned), ibytes(s.Stored), ibytes(s.Free))
	fmt.Fprintf(tw, "traffic\t%s\n", TrafficSummary(s.Bandwidth))
	if s.DiskError != "" {
		fmt.Fprintf(tw, "disk\t%s\n", s.DiskError)
	}
	fmt.Fprintf(tw, "shards\t%s\n", countShards(s))
	fmt.Fprintf(tw, "audits\t%s\n", AuditSummary(s.Audits, now))
	if s.AcksPending > 0 {
		fmt.Fprintf(tw, "acks\t%d waiting for a signed head to record them\n", s.AcksPending)
	}
	if len(s.Rejected) > 0 {
		keys := make([]string, 0, len(s.Rejected))
		for k := range s.Rejected {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Rejected[k]))
		}
		fmt.Fprintf(tw, "rejected\t%s\n", strings.Join(parts, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\ncommitments (%d)\n", len(s.Shards))
	if len(s.Shards) == 0 {
		why := "none assigned yet"
		if s.Why != "" {
			why = "none assigned: " + s.Why
		}
		fmt.Fprintf(w, "  %s\n", why)
	} else {
		fmt.Fprintln(tw, "  SHARD\tSIZE\tPINS\tSTATE\tHOLDERS")
		for _, r := range s.Shards {
			st := r.State
			switch {
			case r.State == follower.ShardFetching && r.Bytes > 0:
				st = fmt.Sprintf("fetching %d%% (%s of %s)", int(min(float64(r.Fetched)/float64(r.Bytes), 1)*100), ibytes(r.Fetched), ibytes(r.Bytes))
			case r.State == follower.ShardStored:
				st, _ = storedText(r, now)
			default:
				st += forText(r.Since, now)
			}
			if r.Error != "" {
				st += " " + errorText(r.Error, r.ErrorAt, now)
			}
			holders := fmt.Sprintf("%d/%d", r.Holders, r.Target)
			if r.Holders < r.Min {
				holders += " <min"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\n", r.ID, ibytes(r.Bytes), r.Pins, st, holders)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	rows := eventRows(s, now)
	fmt.Fprintf(w, "\nevents (%d, newest first)\n", len(rows))
	for _, r := range rows[:min(len(rows), maxPlainEvents)] {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.cells[0], r.keys[1].s, r.cells[2])
	}
	return tw.Flush()
}

// PrintCurator writes the curator dashboard as plain text (no escape
// codes). now dates the ages.
func PrintCurator(w io.Writer, snap CuratorSnapshot, now time.Time) error {
	snap = cleanCurator(snap)
	s := snap.Status
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "curator\tcluster %s, peer %s\n", s.Cluster, s.Peer)
	if s.Head != nil {
		fmt.Fprintf(tw, "head\tseq %d, %s ago, signed by %s\n", s.Head.Seq, age(now, s.Head.Time), s.Head.Signer)
	} else {
		fmt.Fprintf(tw, "head\tnone verified yet\n")
	}
	fmt.Fprintf(tw, "pinset\t%s (%s) in %s\n", english.Plural(int(s.Pins), "pin", ""), ibytes(s.Bytes), english.Plural(s.Shards, "shard", ""))
	fmt.Fprintf(tw, "network\tpeers %d, members %d, curators %d, pending log %d\n", s.Peers, s.Members, len(s.Curators), s.PendingLog)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nmembers (%d)\n", len(snap.Members))
	if len(snap.Members) > 0 {
		fmt.Fprintln(tw, "  PEER\tNICKNAME\tPLEDGED\tASSIGNED\tACKED\tPROVEN\tAUDITS\tLAST SEEN\tSTATE")
		for _, m := range snap.Members {
			state, _, _ := memberState(m)
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s (%d)\t%s (%d)\t%s (%d)\t%d pass, %d fail\t%s\t%s\n", m.Peer, m.Nickname, ibytes(m.Pledged),
				ibytes(m.Assigned), m.AssignedShards, ibytes(m.Acked), m.AckedShards, ibytes(m.Proven), m.ProvenShards,
				m.Audits.Passes, m.Audits.Fails, age(now, m.LastSeen), state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	h := shardHealth(snap.Shards)
	fmt.Fprintf(w, "\n%s\n", h.summary(len(snap.Shards)))
	for i, n := range h.hist {
		label := fmt.Sprint(i)
		if i == maxHistogram {
			label += "+"
		}
		fmt.Fprintf(w, "  %s proven holders: %s\n", label, english.Plural(n, "shard", ""))
	}
	fmt.Fprintf(w, "  copies %s\n", h.claimsLine())
	if err := printFailedCopies(w, snap.Shards, now); err != nil {
		return err
	}
	stuck := stuckShards(snap.Shards)
	if len(stuck) > 0 {
		fmt.Fprintf(w, "\nshards below target (%d, longest first)\n", len(stuck))
		for _, s := range stuck[:min(len(stuck), maxPlainEvents)] {
			fmt.Fprintf(w, "  shard %d %s%s: %s\n", s.ID, s.Status, forText(s.Since, now), s.Problem)
		}
		if len(stuck) > maxPlainEvents {
			fmt.Fprintf(w, "  … and %d more\n", len(stuck)-maxPlainEvents)
		}
	}

	fmt.Fprintf(w, "\nheads published (%d, newest first)\n", len(s.RecentHeads))
	for _, hd := range s.RecentHeads {
		fmt.Fprintf(tw, "  #%d\t%s ago\t%d pins\t%d members\t%d log\t%s\n", hd.Seq, age(now, hd.Time), hd.Pins, hd.Members, hd.Log, hd.CID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nACKs received (%d, newest first)\n", len(s.RecentAcks))
	for _, a := range s.RecentAcks {
		fmt.Fprintf(tw, "  %s ago\t%s\tshard %d\t%s\tseq %d\t%s\n", age(now, a.Time), a.Peer, a.Shard, a.State, a.Seq, ibytes(a.Bytes))
	}
	return tw.Flush()
}

// printFailedCopies lists the copies whose newest audit failed, at most
// maxPlainEvents of them.
func printFailedCopies(w io.Writer, ss []curator.ShardInfo, now time.Time) error {
	n := 0
	for _, s := range ss {
		for _, h := range s.Holders {
			if claimOf(h) != claimFailed {
				continue
			}
			if n++; n > maxPlainEvents {
				continue
			}
			who := h.Peer
			if h.Nickname != "" {
				who = h.Nickname + " " + h.Peer
			}
			when := ""
			if !h.AuditedAt.IsZero() {
				when = " " + age(now, h.AuditedAt) + " ago"
			}
			if _, err := fmt.Fprintf(w, "  audit failed%s: shard %d held by %s: %s\n", when, s.ID, who, h.AuditReason); err != nil {
				return err
			}
		}
	}
	if n > maxPlainEvents {
		_, err := fmt.Fprintf(w, "  … and %d more failed copies\n", n-maxPlainEvents)
		return err
	}
	return nil
}
