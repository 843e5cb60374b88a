package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/curator"
)

func newPinStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status <cid>",
		Short: "Is it pinned, where, by whom, since when: its shard and every holder's ACK and audit",
		Long: `Show one pin: when it was added, its shard in the newest signed head, and
each holder of that shard with its state (proven, ACKed and not yet proven,
audit failed, pending, released), how long ago it ACKed and how long ago an
audit proved its copy.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			ps, err := c.PinStatus(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g, ps)
			}
			return writePinStatus(g.stdout, ps, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writePinStatus prints one pin's status; now dates the ages.
func writePinStatus(out io.Writer, ps curator.PinStatus, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	p := ps.Pin
	fmt.Fprintf(w, "pin\t%s\n", p.CID)
	if p.Name != "" {
		fmt.Fprintf(w, "name\t%s\n", p.Name)
	}
	size := ibytes(p.Size)
	if p.SizeChecked != "" {
		size += " (size check: " + p.SizeChecked + ")"
	}
	fmt.Fprintf(w, "size\t%s\n", size)
	fmt.Fprintf(w, "added\t%s\n", humanize.RelTime(p.Added, now, "ago", "from now"))
	s := ps.Shard
	if s == nil {
		fmt.Fprintf(w, "shard\t%d, not in a signed head yet (the next head lists it)\n", p.Shard)
		return w.Flush()
	}
	fmt.Fprintf(w, "shard\t%d: %s in %s, head seq %d\n", s.ID, ibytes(s.Bytes), english.Plural(int(s.Pins), "pin", ""), ps.HeadSeq)
	status := s.Status
	if !s.Since.IsZero() {
		status += " for " + strings.TrimSuffix(humanize.RelTime(s.Since, now, "", ""), " ")
	}
	fmt.Fprintf(w, "copies\t%d of %d proven (min %d), %d ACKed: %s\n", s.Proven, s.Max, s.Min, s.Acked, status)
	if s.Problem != "" {
		fmt.Fprintf(w, "problem\t%s\n", s.Problem)
	}
	if len(s.Holders) == 0 {
		fmt.Fprintf(w, "holders\tnone assigned yet\n")
	}
	for i, h := range s.Holders {
		label := ""
		if i == 0 {
			label = "holders"
		}
		name := h.Peer
		if h.Nickname != "" {
			name = h.Nickname + " (" + h.Peer + ")"
		}
		fmt.Fprintf(w, "%s\t%s: %s\n", label, name, holderState(h, now))
	}
	return w.Flush()
}

// holderState says where one holder's copy stands, with the ages of its
// ACK and of the audit that proved (or failed) it.
func holderState(h curator.HolderInfo, now time.Time) string {
	ago := func(t time.Time) string { return humanize.RelTime(t, now, "ago", "from now") }
	var parts []string
	switch {
	case h.Proven:
		parts = append(parts, "proven by an audit "+ago(h.AuditedAt))
	case h.State == "stored" && h.Current && h.Audit == "fail":
		parts = append(parts, fmt.Sprintf("audit failed %s: %s", ago(h.AuditedAt), h.AuditReason))
	case h.State == "stored" && h.Current:
		parts = append(parts, "ACKed, not yet proven")
	case h.State == "stored":
		parts = append(parts, "ACKed older content, fetching the change")
	case h.State == "released":
		parts = append(parts, "released")
	case h.Assigned:
		parts = append(parts, "pending: no ACK yet")
	}
	if h.State != "" && !h.AckTime.IsZero() {
		parts = append(parts, fmt.Sprintf("last ACK %s (head seq %d)", ago(h.AckTime), h.AckSeq))
	}
	if !h.Assigned && h.State == "stored" {
		parts = append(parts, "leaving: no longer assigned")
	}
	return strings.Join(parts, "; ")
}
