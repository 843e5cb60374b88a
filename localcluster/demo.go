package localcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/curator"
)

// DemoOptions shape the demo: a curator publishing a generated archive,
// three followers with different pledges, then a fourth that joins.
type DemoOptions struct {
	Dir         string
	Files       int   // sample archive files (about 200)
	ArchiveSize int64 // sample archive bytes (about 100 MiB)
	ShardTarget int64
	Pledges     []int64 // the first followers' pledges
	Fourth      int64   // the pledge of the follower that joins later; 0 skips that step
	Replication int
	Seed        int64
	Out         io.Writer // progress and tables
	Timeout     time.Duration
	Logger      *slog.Logger // the daemons' logs; nil discards them
	// OnStart, when set, is called once the curator runs, before any
	// content or follower is added: `follow demo` attaches its dashboard
	// there. The func it returns, when not nil, is called before the
	// cluster closes; after it returns the cluster must not be used.
	OnStart func(*Cluster) (detach func())
	// Audit, when set, adjusts the curator's audit policy (measurements
	// audit more often than a real cluster).
	Audit func(*configs.Audit)
}

// DefaultDemo is `follow demo`: about 200 files and 100 MiB in folders,
// followers pledging 40, 80 and 160 MiB, replication 2, then a fourth
// follower with 120 MiB.
func DefaultDemo(dir string, out io.Writer) DemoOptions {
	return DemoOptions{
		Dir: dir, Files: 200, ArchiveSize: 100 << 20, ShardTarget: 8 << 20,
		Pledges: []int64{40 << 20, 80 << 20, 160 << 20}, Fourth: 120 << 20,
		Replication: 2, Seed: 1, Out: out, Timeout: 110 * time.Second,
	}
}

// DemoResult is what the demo measured.
type DemoResult struct {
	Shards     []curator.ShardInfo
	Members    []curator.MemberLoad
	Rebalanced []curator.ShardInfo
	After      []curator.MemberLoad
	Took       time.Duration
}

// StartDemo builds the demo cluster up to its first settled state: the
// archive generated and pinned, the first followers joined, every shard
// held and ACKed by its target of holders, every ACK in a signed head.
// The caller closes the cluster. opt.Timeout, when positive, bounds the
// wait (the cluster itself runs until closed).
func StartDemo(ctx context.Context, opt DemoOptions) (*Cluster, []curator.ShardInfo, error) {
	began := time.Now()
	wait := ctx // what StartDemo waits for; the cluster runs on ctx
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}
	say := sayer(opt.Out, began)
	archive := filepath.Join(opt.Dir, "archive")
	say("generating the sample archive: %d files, about %s, in folders", opt.Files, humanize.IBytes(uint64(opt.ArchiveSize)))
	if err := content.GenerateSample(archive, opt.Seed, opt.Files, opt.ArchiveSize); err != nil {
		return nil, nil, err
	}
	cfg := configs.DefaultCurator()
	cfg.ReplicationMin, cfg.ReplicationMax = opt.Replication, opt.Replication
	cfg.ShardTarget = configs.Size(opt.ShardTarget)
	cfg.HeadInterval = configs.Duration(time.Second)
	if opt.Audit != nil {
		opt.Audit(&cfg.Audit)
	}
	c, err := Start(ctx, Options{Dir: filepath.Join(opt.Dir, "cluster"), Curator: cfg, Logger: opt.Logger})
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Cluster, []curator.ShardInfo, error) {
		c.Close()
		return nil, nil, err
	}
	if opt.OnStart != nil {
		if detach := opt.OnStart(c); detach != nil {
			c.onClose = append(c.onClose, detach)
		}
	}
	say("curator started: cluster %s", c.Config.ID)

	added, err := c.Curator.AddContent(wait, curator.AddRequest{Path: archive, Each: true})
	if err != nil {
		return fail(err)
	}
	var total int64
	for _, p := range added {
		total += p.Size
	}
	say("curator published %d pins (%s); shard target %s, replication %d", len(added),
		humanize.IBytes(uint64(total)), humanize.IBytes(uint64(opt.ShardTarget)), opt.Replication)
	for i, p := range opt.Pledges {
		if _, err := c.AddFollower(wait, demoNames[i], demoFollower(demoNames[i], p)); err != nil {
			return fail(err)
		}
		say("follower %s joined, pledging %s", demoNames[i], humanize.IBytes(uint64(p)))
	}
	shards, err := waitSettled(wait, c, len(opt.Pledges), say)
	if err != nil {
		return fail(err)
	}
	return c, shards, nil
}

var demoNames = []string{"alice", "bob", "carol", "dave"}

func demoFollower(name string, pledge int64) FollowerOptions {
	return FollowerOptions{Pledge: configs.Pledge{Bytes: configs.Size(pledge)}, Nickname: name,
		OfferInterval: time.Second, AckInterval: 5 * time.Second}
}

func sayer(out io.Writer, began time.Time) func(string, ...any) {
	if out == nil {
		out = io.Discard
	}
	return func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
}

// WaitSettled waits, at most timeout, until the cluster has members
// members and every shard is settled (see StartDemo), logging progress.
func WaitSettled(ctx context.Context, c *Cluster, members int, timeout time.Duration, logf func(string, ...any)) ([]curator.ShardInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return waitSettled(ctx, c, members, logf)
}

// RunDemo runs the demo to its end and returns what it showed.
func RunDemo(ctx context.Context, opt DemoOptions) (res DemoResult, err error) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	say := sayer(out, began)
	c, shards, err := StartDemo(ctx, opt)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	res.Shards = shards
	if res.Members, err = c.Curator.MemberLoads(ctx); err != nil {
		return res, err
	}
	fmt.Fprintln(out)
	writeTables(out, res.Members, res.Shards)

	if opt.Fourth > 0 {
		name := demoNames[len(opt.Pledges)]
		if _, err := c.AddFollower(ctx, name, demoFollower(name, opt.Fourth)); err != nil {
			return res, err
		}
		fmt.Fprintln(out)
		say("follower %s joins, pledging %s: the allocation rebalances", name, humanize.IBytes(uint64(opt.Fourth)))
		if res.Rebalanced, err = waitSettled(ctx, c, len(opt.Pledges)+1, say); err != nil {
			return res, err
		}
		if res.After, err = c.Curator.MemberLoads(ctx); err != nil {
			return res, err
		}
		fmt.Fprintln(out)
		writeTables(out, res.After, res.Rebalanced)
	}
	res.Took = time.Since(began)
	fmt.Fprintf(out, "\ndemo finished in %s\n", res.Took.Round(100*time.Millisecond))
	return res, nil
}

// waitSettled waits until the newest head lists members members, every shard
// has its target of current ACKs from its assigned holders, each recorded
// in a signed head's log, and no holder that is no longer assigned still
// keeps a copy. It prints progress every second.
func waitSettled(ctx context.Context, c *Cluster, members int, say func(string, ...any)) ([]curator.ShardInfo, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("demo: waiting for the shards to settle: %w\n%s", ctx.Err(), diagnose(c))
		case <-tick.C:
		}
		st := c.Curator.Status()
		if st.Members < members {
			say("waiting for members: %d of %d admitted", st.Members, members)
			continue
		}
		// Admitted is not allocated: the member table changes at once,
		// the allocation only with the next head.
		if n, err := c.Curator.HeadMembers(ctx); err != nil || n < members {
			say("waiting for a head that lists every member: %d of %d", n, members)
			continue
		}
		shards, err := c.Curator.Shards(ctx)
		if err != nil {
			continue // no plan for the newest head yet
		}
		atTarget, leaving := 0, 0
		for _, s := range shards {
			ok := s.Status == curator.ShardAtTarget
			for _, h := range s.Holders {
				if h.Assigned && !h.Proven {
					ok = false
				}
				if !h.Assigned && h.State == "stored" {
					leaving++
					ok = false
				}
			}
			if ok {
				atTarget++
			}
		}
		var parts []string
		for name, f := range c.Followers() {
			s := f.Daemon.Status()
			parts = append(parts, fmt.Sprintf("%s %s/%s", name, humanize.IBytes(uint64(s.Stored)), humanize.IBytes(uint64(s.Assigned))))
		}
		sort.Strings(parts)
		say("%d/%d shards settled, %d copies leaving; stored/assigned: %s", atTarget, len(shards), leaving, strings.Join(parts, ", "))
		if atTarget == len(shards) && len(shards) > 0 {
			return shards, nil
		}
	}
}

func writeTables(out io.Writer, ms []curator.MemberLoad, ss []curator.ShardInfo) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MEMBER\tPLEDGED\tASSIGNED\tACKED\tPROVEN\tSHARDS\tAUDITS")
	for _, m := range ms {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d passed, %d failed\n", m.Nickname, ib(m.Pledged), ib(m.Assigned), ib(m.Acked),
			ib(m.Proven), m.ProvenShards, m.Audits.Passes, m.Audits.Fails)
	}
	w.Flush()
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SHARD\tSIZE\tPINS\tHOLDERS (ACKed and proven by audit)")
	for _, s := range ss {
		var hs []string
		for _, h := range s.Holders {
			if h.Proven {
				hs = append(hs, h.Nickname)
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\n", s.ID, ib(s.Bytes), s.Pins, strings.Join(hs, ", "))
	}
	w.Flush()
}

func ib(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

// diagnose describes every follower's shards and the curator's view, for
// an error message when the cluster does not settle.
func diagnose(c *Cluster) string {
	var b strings.Builder
	for name, f := range c.Followers() {
		s := f.Daemon.Status()
		fmt.Fprintf(&b, "%s: pledged %d, assigned %d, stored %d", name, s.Pledged, s.Assigned, s.Stored)
		if s.Why != "" {
			fmt.Fprintf(&b, " (%s)", s.Why)
		}
		b.WriteString("\n")
		for _, r := range s.Shards {
			fmt.Fprintf(&b, "  shard %d %s bytes %d fetched %d acked-seq %d %s\n", r.ID, r.State, r.Bytes, r.Fetched, r.AckedSeq, r.Error)
		}
	}
	if rej := c.Curator.Status().Rejected; len(rej) > 0 {
		fmt.Fprintf(&b, "curator refusals: %v\n", rej)
	}
	for name, f := range c.Followers() {
		if rej := f.Daemon.Status().Rejected; len(rej) > 0 {
			fmt.Fprintf(&b, "%s refusals: %v\n", name, rej)
		}
	}
	if ss, err := c.Curator.Shards(context.Background()); err == nil {
		for _, s := range ss {
			fmt.Fprintf(&b, "curator: shard %d %s proven %d acked %d/%d:", s.ID, s.Status, s.Proven, s.Acked, s.Max)
			for _, h := range s.Holders {
				fmt.Fprintf(&b, " %s(assigned=%v state=%s current=%v recorded=%v audit=%s %s)", h.Nickname, h.Assigned, h.State, h.Current, h.Recorded, h.Audit, h.AuditReason)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
