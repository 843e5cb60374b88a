package tui

import (
	"context"
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
)

// FollowerSource fetches a follower's status. It is called from a tea.Cmd,
// never from Update, with a context that times out.
type FollowerSource func(ctx context.Context) (follower.Status, error)

// CuratorSnapshot is what the curator dashboard shows: the daemon's status,
// its members with their commitments, and the replication of every shard.
type CuratorSnapshot struct {
	Status  curator.Status
	Members []curator.MemberLoad
	Shards  []curator.ShardInfo
	// Note is a line of context from the source, shown under the header
	// when not empty: `follow demo` puts its newest progress line here.
	Note string
}

// CuratorSource fetches a curator snapshot, like FollowerSource.
type CuratorSource func(ctx context.Context) (CuratorSnapshot, error)

// Options configure a dashboard model. The zero value is usable.
type Options struct {
	// Now is the clock for ages and rates (default time.Now); tests fix it.
	Now func() time.Time
	// Interval between the end of one fetch and the start of the next
	// (default 1s).
	Interval time.Duration
	// Timeout bounds one fetch (default 10s).
	Timeout time.Duration
	// Title replaces "pinfold follower" / "pinfold curator" in the header.
	Title string
	// QuitNote is a few words added to "q quit" in the footer, to say what
	// quitting does besides closing the dashboard (empty: nothing).
	QuitNote string
	// Help replaces the help screen's closing line ("Quitting it leaves
	// the follower running."), e.g. to say the daemon runs in this process.
	Help string
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}

// RunOptions configure RunFollower and RunCurator.
type RunOptions struct {
	Options
	In  io.Reader // keyboard (default os.Stdin)
	Out io.Writer // screen (default os.Stdout)
}

// tickMsg asks for the next fetch.
type tickMsg struct{}

// followerMsg is the result of one follower fetch.
type followerMsg struct {
	status follower.Status
	err    error
	at     time.Time
}

// curatorMsg is the result of one curator fetch.
type curatorMsg struct {
	snap CuratorSnapshot
	err  error
	at   time.Time
}

// poller is the polling state a model shares: one fetch in flight at a
// time, the next one Interval after the previous one ended.
type poller struct {
	opt      Options
	inflight bool
	loaded   bool  // a snapshot arrived at least once
	err      error // the newest fetch failed with err
}

// start returns the fetch command unless one is in flight.
func (p *poller) start(fetch tea.Cmd) tea.Cmd {
	if p.inflight {
		return nil
	}
	p.inflight = true
	return fetch
}

// done records a fetch result and schedules the next tick.
func (p *poller) done(err error) tea.Cmd {
	p.inflight = false
	p.err = err
	if err == nil {
		p.loaded = true
	}
	return tea.Tick(p.opt.Interval, func(time.Time) tea.Msg { return tickMsg{} })
}

func fetchFollower(src FollowerSource, opt Options) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opt.Timeout)
		defer cancel()
		s, err := src(ctx)
		return followerMsg{status: s, err: err, at: opt.Now()}
	}
}

func fetchCurator(src CuratorSource, opt Options) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opt.Timeout)
		defer cancel()
		s, err := src(ctx)
		return curatorMsg{snap: s, err: err, at: opt.Now()}
	}
}
