package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/pinfold/pinfold/follower"
)

// FollowerModel is the follower dashboard: header, storage bars, the
// commitments table and the events pane.
type FollowerModel struct {
	frame
	src     FollowerSource
	status  follower.Status
	now     time.Time
	samples map[int64]sample // previous Fetched of each fetching shard
	rates   map[int64]float64
	shards  *table
	events  *table
}

// sample is one poll's Fetched bytes of a shard.
type sample struct {
	bytes int64
	at    time.Time
}

// Follower pane indexes.
const (
	paneCommitments = iota
	paneEvents
)

// NewFollowerModel returns the follower dashboard over src.
func NewFollowerModel(src FollowerSource, opt Options) *FollowerModel {
	opt = opt.withDefaults()
	m := &FollowerModel{
		src: src, now: opt.Now(), samples: map[int64]sample{}, rates: map[int64]float64{},
		shards: newTable("commitments", []column{
			{title: "SHARD", width: 6, right: true, sort: true},
			{title: "SIZE", width: 10, right: true, sort: true},
			{title: "PINS", width: 6, right: true, sort: true},
			{title: "STATE", width: 20, flex: true, sort: true},
			{title: "HOLDERS", width: 9, sort: true},
		}, 0),
		events: newTable("events", []column{
			{title: "AGE", width: 5, right: true, sort: true},
			{title: "KIND", width: 10, sort: true},
			{title: "TEXT", width: 20, flex: true},
		}, 0),
	}
	m.shards.empty = "no shards assigned yet"
	m.events.empty = "no events yet"
	m.frame = newFrame(opt, m.shards, m.events)
	return m
}

// Init starts the first fetch.
func (m *FollowerModel) Init() tea.Cmd { return m.start(fetchFollower(m.src, m.opt)) }

// Update handles keys, resizes, ticks and fetch results. It does no I/O.
func (m *FollowerModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg)
	case tea.KeyMsg:
		return m, m.handleKey(msg, m.page)
	case tickMsg:
		return m, m.start(fetchFollower(m.src, m.opt))
	case followerMsg:
		m.now = msg.at
		if msg.err == nil {
			m.setStatus(msg.status, msg.at)
		}
		return m, m.done(msg.err)
	}
	return m, nil
}

// setStatus takes a new snapshot: rates from the previous poll's Fetched
// bytes, then the table rows.
func (m *FollowerModel) setStatus(s follower.Status, at time.Time) {
	s = cleanFollower(s)
	m.status = s
	seen := map[int64]bool{}
	for _, r := range s.Shards {
		if r.State != follower.ShardFetching {
			continue
		}
		seen[r.ID] = true
		if prev, ok := m.samples[r.ID]; ok && at.After(prev.at) && r.Fetched >= prev.bytes {
			m.rates[r.ID] = float64(r.Fetched-prev.bytes) / at.Sub(prev.at).Seconds()
		}
		m.samples[r.ID] = sample{bytes: r.Fetched, at: at}
	}
	for id := range m.samples {
		if !seen[id] {
			delete(m.samples, id)
			delete(m.rates, id)
		}
	}
	m.shards.rows = m.shards.rows[:0]
	for _, r := range s.Shards {
		m.shards.rows = append(m.shards.rows, m.shardRow(r))
	}
	m.events.rows = eventRows(s, at)
	if s.Why != "" {
		m.shards.empty = "no shards assigned: " + s.Why
	}
}

// Rate returns the fetch rate of a shard in bytes per second, computed from
// the Fetched bytes of the last two polls; ok is false before two polls.
func (m *FollowerModel) Rate(shard int64) (bps float64, ok bool) {
	bps, ok = m.rates[shard]
	return bps, ok
}

var stateRank = map[string]int{follower.ShardFetching: 0, follower.ShardQueued: 1, follower.ShardStored: 2, follower.ShardReleasing: 3}

func (m *FollowerModel) shardRow(r follower.ShardStatus) row {
	holders := fmt.Sprintf("%d/%d", r.Holders, r.Target)
	if r.Holders < r.Min {
		holders += " <min"
	}
	return row{
		cells: []string{fmt.Sprint(r.ID), ibytes(r.Bytes), fmt.Sprint(r.Pins), m.stateText(r), holders},
		keys: []sortKey{{n: float64(r.ID)}, {n: -float64(r.Bytes)}, {n: -float64(r.Pins)},
			{n: float64(stateRank[r.State]), s: stateOrder(r)}, {n: float64(r.Holders - r.Min)}},
	}
}

// stateOrder orders rows of one state: stored shards by proof, failed
// first, then by ID.
func stateOrder(r follower.ShardStatus) string {
	p := 0
	if r.State == follower.ShardStored {
		p = proof(r)
	}
	return fmt.Sprintf("%d %020d", p, r.ID)
}

// stateText is the STATE cell: fetching shows a bar, percent and rate.
func (m *FollowerModel) stateText(r follower.ShardStatus) string {
	var s string
	switch r.State {
	case follower.ShardFetching:
		frac := 0.0
		if r.Bytes > 0 {
			frac = float64(r.Fetched) / float64(r.Bytes)
		}
		// The percentage is cut, not rounded: 100% only once it is all there.
		b := m.bar
		b.Width = 10
		s = fmt.Sprintf("fetching %s %3d%%", b.ViewAs(frac), int(min(frac, 1)*100))
		if bps, ok := m.rates[r.ID]; ok {
			s += " " + rate(bps)
		}
	case follower.ShardStored:
		text, t := storedText(r, m.now)
		s = t.render(text)
	default:
		s = r.State + forText(r.Since, m.now)
	}
	if r.Error != "" {
		s += " " + warnStyle.Render(errorText(r.Error, r.ErrorAt, m.now))
	}
	return s
}

// eventRows merges the events and the rejections, newest first.
func eventRows(s follower.Status, now time.Time) []row {
	type ev struct {
		t          time.Time
		kind, text string
	}
	var evs []ev
	for _, e := range s.Events {
		evs = append(evs, ev{e.Time, e.Kind, e.Text})
	}
	for _, r := range s.Rejections {
		text := r.Reason
		if r.Error != "" && r.Error != r.Reason {
			text += ": " + r.Error
		}
		if r.Source != "" || r.Peer != "" {
			text += " (" + strings.TrimSpace(string(r.Source)+" "+shortPeer(r.Peer)) + ")"
		}
		evs = append(evs, ev{r.Time, "rejected", text})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].t.After(evs[j].t) })
	rows := make([]row, 0, len(evs))
	for i, e := range evs {
		kind := e.kind
		if kind == "rejected" {
			kind = warnStyle.Render(kind)
		}
		rows = append(rows, row{
			cells: []string{age(now, e.t), kind, e.text},
			keys:  []sortKey{{n: float64(i)}, {s: e.kind, n: 0}, {s: e.text}},
		})
	}
	return rows
}

// layout is how many lines each part of the screen gets.
type followerLayout struct {
	storage, shards, events int
}

func (m *FollowerModel) layout() followerLayout {
	w, h := m.size()
	var l followerLayout
	l.storage = 4
	if w >= 100 {
		l.storage = 2
	}
	if m.status.DiskError != "" {
		l.storage++
	}
	if m.status.DiskPaused != "" {
		l.storage++
	}
	// The shards, audits and traffic lines.
	l.storage += 3
	fixed := 3 + l.storage + 1 // header (with the next action), storage, footer
	if m.err != nil {
		fixed++
	}
	rest := max(h-fixed, 0)
	// Commitments get the rows they need, up to 3/5 of the room when the
	// events need the rest; events get what is left.
	needS, needE := len(m.shards.visible())+2, len(m.events.visible())+2
	l.shards = min(needS, max(rest*3/5, rest-needE), rest)
	l.shards = max(l.shards, min(rest, 3))
	l.events = rest - l.shards
	return l
}

func (m *FollowerModel) page(i int) int {
	l := m.layout()
	if i == paneCommitments {
		return max(l.shards-2, 1)
	}
	return max(l.events-2, 1)
}

// View renders the dashboard to fit the terminal.
func (m *FollowerModel) View() string {
	w, h := m.size()
	title := m.opt.Title
	if title == "" {
		title = "pinfold follower"
	}
	var blocks [][]string
	if !m.loaded {
		lines := []string{titleStyle.Render(title), ""}
		if m.err != nil {
			lines = append(lines, banner("follower", m.err, w))
		} else {
			lines = append(lines, "connecting to the follower…")
		}
		return join([][]string{padLines(lines, w, h-1), {m.footer()}}, w, h)
	}
	blocks = append(blocks, m.header(title))
	if m.err != nil {
		blocks = append(blocks, []string{banner("follower", m.err, w)})
	}
	l := m.layout()
	blocks = append(blocks, m.storage(w))
	if m.showHelp {
		blocks = append(blocks, padLines(m.helpScreen("follower"), w, l.shards+l.events))
	} else {
		blocks = append(blocks, m.shards.view(w, l.shards, m.focus == paneCommitments))
		blocks = append(blocks, m.events.view(w, l.events, m.focus == paneEvents))
	}
	blocks = append(blocks, []string{m.footer()})
	return join(blocks, w, h)
}

func (m *FollowerModel) header(title string) []string {
	s := m.status
	who := shortPeer(s.Peer)
	if s.Nickname != "" {
		who = s.Nickname + " " + who
	}
	l1 := titleStyle.Render(title) + fmt.Sprintf(" · %s · %s · up %s · peers %d", clusterLabel(s), who, age(m.now, s.Started), s.Peers)
	var l2 string
	if s.Head != nil {
		l2 = fmt.Sprintf("head seq %d %s ago by %s, verified", s.Head.Seq, age(m.now, s.Head.Time), shortPeer(s.Head.Signer))
	} else {
		l2 = "no verified head yet"
	}
	switch {
	case s.Pinset.Error != "":
		l2 += ", " + warnStyle.Render("syncing ("+s.Pinset.Error+")")
	case s.Pinset.CaughtUp:
		l2 += ", " + goodStyle.Render("caught up")
	case s.Head != nil:
		l2 += ", syncing"
	}
	l2 += fmt.Sprintf(" · curators reachable %d/%d", Reachable(s.Curators), len(s.Curators))
	return []string{l1, l2, "next: " + NextAction(s)}
}

// storage draws pledged / assigned / stored / free as bars on one scale,
// then the shards proven and the audit record.
func (m *FollowerModel) storage(w int) []string {
	s := m.status
	items := []struct {
		name string
		n    int64
	}{{"pledged", s.Pledged}, {"assigned", s.Assigned}, {"stored", s.Stored}, {"free disk", s.Free}}
	// One scale for the pledge and what fills it; free disk is often far
	// larger and fills its bar when it exceeds the pledge.
	scale := max(s.Pledged, s.Assigned, s.Stored, 1)
	cols := 1
	if w >= 100 {
		cols = 2
	}
	colW := w / cols
	b := m.bar
	b.Width = max(min(colW-10-1-10-3, 40), 4)
	var cellsOut []string
	for _, it := range items {
		cellsOut = append(cellsOut, cell(it.name, 10, false)+" "+b.ViewAs(float64(it.n)/float64(scale))+" "+cell(ibytes(it.n), 10, true))
	}
	var lines []string
	for i := 0; i < len(cellsOut); i += cols {
		line := ""
		for j := i; j < i+cols && j < len(cellsOut); j++ {
			line += cell(cellsOut[j], colW, false)
		}
		lines = append(lines, strings.TrimRight(line, " "))
	}
	if s.DiskError != "" {
		lines = append(lines, warnStyle.Render("disk: "+s.DiskError))
	}
	if s.DiskPaused != "" {
		lines = append(lines, warnStyle.Render("disk: "+s.DiskPaused))
	}
	// What counts: the copies an audit proved, and this follower's record,
	// cut visibly where the screen is narrow.
	return append(lines, ansi.Truncate(cell("shards", 10, false)+" "+countShards(s).String(), w, "…"),
		ansi.Truncate(cell("audits", 10, false)+" "+auditTone(s.Audits).render(AuditSummary(s.Audits, m.now)), w, "…"),
		ansi.Truncate(cell("traffic", 10, false)+" "+TrafficSummary(s.Bandwidth), w, "…"))
}
