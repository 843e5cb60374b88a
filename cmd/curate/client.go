package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
)

func client(g *globals) (*curator.Client, error) {
	l, err := curatorHome(g).Load()
	if err != nil {
		return nil, err
	}
	return curator.NewClient(l), nil
}

func printJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster as the running daemon sees it",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g, s)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "cluster\t%s (%s)\n", s.Cluster, s.ClusterID)
			if s.Head != nil {
				fmt.Fprintf(w, "head\tseq %d, %s, %s ago, signed by %s\n", s.Head.Seq, s.Head.CID,
					time.Since(s.Head.Time).Round(time.Second), s.Head.Signer)
			} else {
				fmt.Fprintf(w, "head\tnone verified yet\n")
			}
			fmt.Fprintf(w, "pins\t%d (%s) in %s\n", s.Pins, ibytes(s.Bytes), english.Plural(s.Shards, "shard", ""))
			fmt.Fprintf(w, "members\t%d\n", s.Members)
			fmt.Fprintf(w, "curators\t%s\n", strings.Join(s.Curators, ", "))
			fmt.Fprintf(w, "peers\t%d connected\n", s.Peers)
			fmt.Fprintf(w, "pending log\t%s for the next head\n", english.Plural(s.PendingLog, "record", ""))
			if len(s.SizeChecks) > 0 {
				var parts []string
				for _, k := range []string{curator.CheckPending, curator.CheckOK, curator.CheckMismatch, curator.CheckUnreachable, curator.CheckFailed} {
					if n := s.SizeChecks[k]; n > 0 {
						parts = append(parts, fmt.Sprintf("%s %d", k, n))
					}
				}
				fmt.Fprintf(w, "size checks\t%s\n", strings.Join(parts, ", "))
			}
			if s.DHT != nil {
				fmt.Fprintf(w, "dht\t%s\n", dhtLine(*s.DHT, time.Now()))
			}
			for i, line := range p2p.RefusalLines(s.Refused, 8) {
				label := ""
				if i == 0 {
					label = "refused"
				}
				fmt.Fprintf(w, "%s\t%s\n", label, line)
			}
			if len(s.Rejected) > 0 {
				fmt.Fprintf(w, "refused in all\t%s\n", p2p.TotalsLine(s.Rejected))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPinCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pin", Short: "Add, import, list and remove pins"}
	var name, size string
	var replMin, replMax int64
	var from []string
	var timeout time.Duration
	add := &cobra.Command{
		Use:   "add <cid>",
		Short: "Pin one CID, walking its DAG from the network to learn its size",
		Long: `Pin one CID.

Without --size, the daemon walks the CID's whole DAG from the network
(its own block store, then bitswap from its connected peers and from the
providers given with --from) and pins it with the exact size; the command
waits for the walk, at most --timeout. The daemon keeps the blocks it
fetched, so it serves the pin to followers itself.

With --size, the pin is added at once and the daemon checks the size in
the background; 'curate pin ls' shows the outcome (ok, pending,
mismatch: walked N, unreachable). A wrong size is reported, never
changed: fix it with 'curate pin rm' then 'curate pin add' without --size.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			pr := curator.PinRequest{CID: args[0], Name: name, ReplMin: replMin, ReplMax: replMax}
			if size != "" {
				s, err := configs.ParseSize(size)
				if err != nil {
					return usageError{fmt.Errorf("--size: %w", err)}
				}
				if s == 0 {
					return usageError{errors.New("--size: must be above 0 (leave it out to walk the DAG)")}
				}
				pr.Size = int64(s)
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %s: must be above 0", timeout)}
			}
			opt := curator.PinOptions{From: from, Timeout: timeout, Check: pr.Size > 0}
			res, err := c.AddPinsWith(cmd.Context(), []curator.PinRequest{pr}, opt)
			if err != nil {
				return err
			}
			switch {
			case res.Present > 0:
				fmt.Fprintf(g.stdout, "%s is already pinned\n", args[0])
			case len(res.Walked) > 0:
				w := res.Walked[0]
				fmt.Fprintf(g.stdout, "pinned %s: %s (%d bytes) in %s, walked from the network\n", args[0], ibytes(w.Size), w.Size, english.Plural(int(w.Blocks), "block", ""))
			default:
				fmt.Fprintf(g.stdout, "pinned %s; its size is checked in the background (see 'curate pin ls')\n", args[0])
			}
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "name of the pin")
	add.Flags().StringVar(&size, "size", "", "size of the content, e.g. 4GiB (default: walk the DAG to learn it)")
	add.Flags().StringArrayVar(&from, "from", nil, "provider to dial first, a multiaddr ending in /p2p/<peer ID> (repeatable)")
	add.Flags().DurationVar(&timeout, "timeout", curator.DefaultWalkTimeout, "bound on walking the DAG")
	add.Flags().Int64Var(&replMin, "replication-min", 0, "replication minimum (0: cluster default)")
	add.Flags().Int64Var(&replMax, "replication-max", 0, "replication maximum (0: cluster default)")

	var restart bool
	var batch int
	imp := &cobra.Command{
		Use:   "import <file>",
		Short: "Pin every CID of a file: one per line (cid [name] [size]) or JSON lines",
		Long: `Pin every CID of a file, in batches, with progress.

Each line is either JSON ({"cid": "...", "name": "...", "size": 123}) or
a CID optionally followed by a name and a size, separated by tabs (or by
spaces, the size last: a last word that starts like a number is the size,
so write a name that ends in a number with tabs or JSON). A size that does
not parse stops the import at its line. Lines starting with # are comments.

An interrupted import resumes: progress is kept in <file>.progress, and pins
already present are skipped, never duplicated.

A line without a size makes the daemon walk that CID's DAG from the network
to learn it (as 'curate pin add' does), at most 10 minutes per pin; given
sizes are taken as they are.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			return importPins(cmd, g, c, args[0], batch, restart)
		},
	}
	imp.Flags().BoolVar(&restart, "restart", false, "ignore the progress file and start from the first line")
	imp.Flags().IntVar(&batch, "batch", 10_000, "pins per request")

	var (
		asJSON bool
		after  string
		limit  int
	)
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List every pin (streams; JSON lines with --json)",
		Long: `List every pin, one per line: CID, shard, size and name, tab-separated,
and for a pin whose size was walked or is being checked a fifth column:
ok, pending, mismatch: walked N, unreachable or failed: <why>.
Control characters in names are printed escaped (\t, \n, \r, \xNN).
Pins come in shard, then CID order; --limit pages the listing and --after
resumes it after a pin (a listing cut off says where to resume).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageError{fmt.Errorf("--limit %d: want a count, or 0 for every pin", limit)}
			}
			if after != "" {
				if _, err := pinset.ParseCursor(after); err != nil {
					return usageError{fmt.Errorf("--after: %w", err)}
				}
			}
			bw := bufio.NewWriterSize(g.stdout, 256<<10)
			format := curator.FormatTSV
			if asJSON {
				format = curator.FormatJSON
			}
			// The daemon's lines are printed as they come.
			n, last, err := c.CopyPins(cmd.Context(), curator.ListOptions{After: after, Limit: limit}, format, bw)
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			if err != nil && last != "" {
				// Cut off: say where to resume.
				return fmt.Errorf("%w (after %d pins; resume with --after %s)", err, n, last)
			}
			if err == nil && limit > 0 && n == limit {
				fmt.Fprintf(g.stderr, "%d pins listed; the next page: curate pin ls --after %s --limit %d\n", n, last, limit)
			}
			return err
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	ls.Flags().StringVar(&after, "after", "", "resume after this pin: <shard>/<cid>, as the previous page or a cut-off listing names it")
	ls.Flags().IntVar(&limit, "limit", 0, "list at most this many pins (0: all)")
	var rmFrom string
	rm := &cobra.Command{
		Use:   "rm <cid>... | rm --from <file>",
		Short: "Unpin CIDs: given as arguments, or every CID of a file",
		Long: `Unpin CIDs given as arguments, or with --from every CID of a file in
the format 'curate pin import' reads (the first word of each line; blank
lines and lines starting with # are skipped). Removal goes in batches of
100,000 CIDs, each one CRDT update; CIDs not pinned are counted and
skipped, so an interrupted removal can simply run again.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == (rmFrom == "") {
				return usageError{errors.New("give the CIDs to unpin as arguments, or --from <file>")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			if rmFrom == "" && len(args) == 1 {
				if err := c.RemovePin(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "unpinned %s\n", args[0])
				return nil
			}
			removed, absent := 0, 0
			flush := func(batch []string) error {
				if len(batch) == 0 {
					return nil
				}
				res, err := c.RemovePins(cmd.Context(), batch)
				if err != nil {
					return fmt.Errorf("unpin: %w (after %d unpinned)", err, removed)
				}
				removed, absent = removed+res.Removed, absent+res.Absent
				return nil
			}
			if rmFrom == "" {
				err = flush(args)
			} else {
				err = removeFromFile(rmFrom, flush)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "unpinned %d; %d were not pinned\n", removed, absent)
			return nil
		},
	}
	rm.Flags().StringVar(&rmFrom, "from", "", "unpin every CID of this file (the first word of each line)")
	cmd.AddCommand(add, imp, ls, rm, newPinStatusCmd(g))
	return cmd
}

// rmBatch is how many CIDs one removal request carries (the daemon's
// bound on a batch).
const rmBatch = 100_000

// removeFromFile hands the CIDs of path (the first word of each line) to
// flush in batches of rmBatch.
func removeFromFile(path string, flush func([]string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	batch := make([]string, 0, rmBatch)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasPrefix(t, "{") {
			var pr curator.PinRequest
			if err := json.Unmarshal([]byte(t), &pr); err != nil {
				return fmt.Errorf("%s: line %d: %w", path, line, err)
			}
			t = pr.CID
		} else {
			t = strings.Fields(t)[0]
		}
		if _, err := cid.Decode(t); err != nil {
			return fmt.Errorf("%s: line %d: %.80q: %w", path, line, t, err)
		}
		if batch = append(batch, t); len(batch) == rmBatch {
			if err := flush(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return flush(batch)
}

// parsePinLine reads one import line; ok is false for blank and comment
// lines. Tab-separated, a third field is the size; separated by spaces,
// the last word is the size when it starts like a number ("500", "1.5GiB",
// "-12"). Either way a size that does not parse is an error, never part of
// the name; a name that ends in a number needs tabs or JSON.
func parsePinLine(line string) (curator.PinRequest, bool, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return curator.PinRequest{}, false, nil
	}
	if strings.HasPrefix(line, "{") {
		var pr curator.PinRequest
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pr); err != nil {
			return pr, false, err
		}
		return pr, true, nil
	}
	var fields []string
	tabs := strings.Contains(line, "\t")
	if tabs {
		fields = strings.Split(line, "\t")
	} else {
		fields = strings.Fields(line)
	}
	pr := curator.PinRequest{CID: strings.TrimSpace(fields[0])}
	rest := fields[1:]
	if tabs && len(rest) > 2 {
		return pr, false, fmt.Errorf("%d tab-separated fields; want cid, name and size", len(fields))
	}
	if n := len(rest); n > 0 && ((tabs && n == 2) || sizeLike.MatchString(strings.TrimSpace(rest[n-1]))) {
		size, err := configs.ParseSize(rest[n-1])
		if err != nil {
			return pr, false, err
		}
		pr.Size = int64(size)
		rest = rest[:n-1]
	}
	pr.Name = strings.TrimSpace(strings.Join(rest, " "))
	return pr, true, nil
}

// sizeLike matches a word meant as a size: a number, maybe signed, maybe
// with a unit.
var sizeLike = regexp.MustCompile(`^[-+]?[0-9][0-9.,]*\s*[A-Za-z]*$`)

func importPins(cmd *cobra.Command, g *globals, c *curator.Client, path string, batch int, restart bool) error {
	if batch < 1 || batch > 100_000 {
		return usageError{fmt.Errorf("--batch %d: want 1 to 100000", batch)}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	progressPath := path + ".progress"
	skip := 0
	if !restart {
		if b, err := os.ReadFile(progressPath); err == nil {
			skip, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		pending        []curator.PinRequest
		line, done     int
		added, present int
		start          = time.Now()
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		res, err := c.AddPins(cmd.Context(), pending)
		if err != nil {
			return fmt.Errorf("import %s: batch ending at line %d: %w", path, line, err)
		}
		added += res.Added
		present += res.Present
		pending = pending[:0]
		done = line
		if err := configs.WriteFileAtomic(progressPath, []byte(strconv.Itoa(done)+"\n"), 0o644); err != nil {
			return err
		}
		rate := float64(added+present) / time.Since(start).Seconds()
		fmt.Fprintf(g.stderr, "\rline %d: %d added, %d already present, %.0f pins/s", line, added, present, rate)
		return nil
	}
	for sc.Scan() {
		line++
		if line <= skip {
			continue
		}
		pr, ok, err := parsePinLine(sc.Text())
		if err != nil {
			return fmt.Errorf("import %s: line %d: %w", path, line, err)
		}
		if !ok {
			continue
		}
		pending = append(pending, pr)
		if len(pending) >= batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if skip > 0 {
		fmt.Fprintf(g.stderr, "\n(resumed after line %d)", skip)
	}
	fmt.Fprintf(g.stderr, "\n")
	fmt.Fprintf(g.stdout, "imported %s: %s added, %d already present, in %s\n", path, english.Plural(added, "pin", ""), present, time.Since(start).Round(time.Millisecond))
	if err := os.Remove(progressPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func newMembersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "members", Short: "List, approve and remove members"}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List members: peer, nickname, pledged, last seen, state",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			ms, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g, ms)
			}
			return writeMembers(g.stdout, ms)
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	decide := func(action, short string) *cobra.Command {
		return &cobra.Command{
			Use:   action + " <peer-id>",
			Short: short,
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(g)
				if err != nil {
					return err
				}
				if err := c.Decide(cmd.Context(), args[0], action); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s: %s\n", args[0], action+"d")
				return nil
			},
		}
	}
	cmd.AddCommand(ls, decide("approve", "Admit a pending member"), decide("remove", "Remove a member; its offers are ignored from now on"))
	return cmd
}

func writeMembers(out io.Writer, ms []curator.MemberLoad) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PEER\tNICKNAME\tPLEDGED\tASSIGNED\tACKED\tPROVEN\tAUDITS\tLAST SEEN\tSTATE\tSTANDING")
	var notes []string
	for _, m := range ms {
		seen := "never"
		if !m.LastSeen.IsZero() {
			seen = humanize.Time(m.LastSeen)
		}
		standing := m.Standing
		if m.StandingWhy != "" {
			notes = append(notes, fmt.Sprintf("%s (%s) %s: %s", shortPeer(m.Peer), m.Nickname, m.Standing, m.StandingWhy))
		}
		if m.Refused != "" {
			notes = append(notes, fmt.Sprintf("%s (%s) offer refused: %s", shortPeer(m.Peer), m.Nickname, m.Refused))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s (%d)\t%s (%d)\t%s (%d)\t%d pass, %d fail\t%s\t%s\t%s\n", m.Peer, m.Nickname, ibytes(m.Pledged),
			ibytes(m.Assigned), m.AssignedShards, ibytes(m.Acked), m.AckedShards, ibytes(m.Proven), m.ProvenShards,
			m.Audits.Passes, m.Audits.Fails, seen, m.State, standing)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	return nil
}

func ibytes(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

func newShardsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "shards", Short: "Replication status of shards"}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List shards: size, holders with ACK age, below min / at target / over",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			ss, err := c.Shards(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g, ss)
			}
			return writeShards(g.stdout, ss)
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(ls)
	return cmd
}

func writeShards(out io.Writer, ss []curator.ShardInfo) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SHARD\tSIZE\tPINS\tPROVEN\tACKED\tSTATUS\tHOLDERS")
	for _, s := range ss {
		var hs []string
		for _, h := range s.Holders {
			name := h.Nickname
			if name == "" {
				name = shortPeer(h.Peer)
			}
			switch {
			case h.Proven:
				name += fmt.Sprintf(" (proven %s)", humanize.Time(h.AuditedAt))
			case h.State == "stored" && h.Current && h.Audit == "fail":
				name += fmt.Sprintf(" (audit failed %s: %s)", humanize.Time(h.AuditedAt), h.AuditReason)
			case h.State == "stored" && h.Current:
				name += fmt.Sprintf(" (acked %s, not yet proven)", humanize.Time(h.AckTime))
			case h.State == "released":
				name += " (released)"
			case h.Assigned:
				name += " (pending)"
			}
			if !h.Assigned && h.State == "stored" {
				name += " [leaving]"
			}
			hs = append(hs, name)
		}
		status := s.Status
		if !s.Since.IsZero() {
			status += " for " + strings.TrimSuffix(humanize.Time(s.Since), " ago")
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%d/%d\t%d\t%s\t%s\n", s.ID, ibytes(s.Bytes), s.Pins, s.Proven, s.Max, s.Acked, status, strings.Join(hs, ", "))
		if s.Problem != "" {
			fmt.Fprintf(w, "  ! %s\n", s.Problem)
		}
	}
	return w.Flush()
}

func shortPeer(p string) string {
	if len(p) > 12 {
		return p[:4] + "…" + p[len(p)-6:]
	}
	return p
}

// dhtLine says how publishing the record to the DHT goes.
func dhtLine(i curator.DHTInfo, now time.Time) string {
	line := fmt.Sprintf("%s, routing table %d", i.Mode, i.Peers)
	if !i.LastPut.IsZero() {
		line += fmt.Sprintf("; record of seq %d put %s ago", i.LastSeq, now.Sub(i.LastPut).Round(time.Second))
	}
	if i.LastError != "" {
		line += "; last put failed: " + i.LastError
	}
	if !i.Next.IsZero() {
		line += fmt.Sprintf("; next put in %s", max(i.Next.Sub(now), 0).Round(time.Second))
	}
	return line
}
