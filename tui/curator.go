package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/dustin/go-humanize/english"

	"github.com/pinfold/pinfold/curator"
)

// CuratorModel is the curator dashboard: header, shard health, the members
// table and the recent heads and ACKs.
type CuratorModel struct {
	frame
	src     CuratorSource
	snap    CuratorSnapshot
	now     time.Time
	members *table
	heads   *table
	acks    *table
}

// Curator pane indexes.
const (
	paneMembers = iota
	paneHeads
	paneAcks
)

// maxHistogram is the number of histogram rows: the last one counts the
// shards with that many proven holders or more.
const maxHistogram = 4

// NewCuratorModel returns the curator dashboard over src.
func NewCuratorModel(src CuratorSource, opt Options) *CuratorModel {
	opt = opt.withDefaults()
	m := &CuratorModel{
		src: src, now: opt.Now(),
		members: newTable("members", []column{
			{title: "PEER", width: 11, sort: true},
			{title: "NICKNAME", width: 8, flex: true, max: 20, sort: true},
			// Sizes take at most 7 cells but from 1000 to 1023 of a unit
			// ("1023 MiB"), which pledges, round sizes, seldom are.
			{title: "PLEDGED", width: 7, right: true, sort: true},
			{title: "ASSIGNED", width: 8, right: true, sort: true},
			{title: "ACKED", width: 8, right: true, sort: true},
			{title: "PROVEN", width: 8, right: true, sort: true},
			{title: "AUDITS", width: 7, right: true, sort: true},
			{title: "SEEN", width: 5, right: true, sort: true},
			// Liveness, or the standing when it is not good, with why
			// as far as the width allows.
			{title: "STATE", width: 9, flex: true, sort: true},
		}, 1),
		heads: newTable("heads published", []column{
			{title: "SEQ", width: 6, right: true, sort: true},
			{title: "AGE", width: 5, right: true},
			{title: "PINS", width: 7, right: true, sort: true},
			{title: "MEMB", width: 4, right: true},
			{title: "LOG", width: 4, right: true, flex: true},
		}, 0),
		acks: newTable("ACKs received", []column{
			{title: "AGE", width: 5, right: true, sort: true},
			{title: "PEER", width: 11, flex: true, sort: true},
			{title: "SHARD", width: 5, right: true, sort: true},
			{title: "STATE", width: 8, sort: true},
			{title: "SEQ", width: 5, right: true},
		}, 0),
	}
	m.members.empty = "no members yet"
	m.heads.empty = "no head published yet"
	m.acks.empty = "no ACK received yet"
	m.frame = newFrame(opt, m.members, m.heads, m.acks)
	return m
}

// Init starts the first fetch.
func (m *CuratorModel) Init() tea.Cmd { return m.start(fetchCurator(m.src, m.opt)) }

// Update handles keys, resizes, ticks and fetch results. It does no I/O.
func (m *CuratorModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg)
	case tea.KeyMsg:
		return m, m.handleKey(msg, m.page)
	case tickMsg:
		return m, m.start(fetchCurator(m.src, m.opt))
	case curatorMsg:
		m.now = msg.at
		if msg.err == nil {
			m.setSnapshot(msg.snap, msg.at)
		}
		return m, m.done(msg.err)
	}
	return m, nil
}

func (m *CuratorModel) setSnapshot(s CuratorSnapshot, now time.Time) {
	s = cleanCurator(s)
	m.snap = s
	m.members.rows = m.members.rows[:0]
	for _, ml := range s.Members {
		state, t, rank := memberState(ml)
		m.members.rows = append(m.members.rows, row{
			cells: []string{shortPeer(ml.Peer), ml.Nickname, ibytes(ml.Pledged),
				ibytes(ml.Assigned), ibytes(ml.Acked), ibytes(ml.Proven), memberAudits(ml.Audits),
				age(now, ml.LastSeen), t.render(state)},
			keys: []sortKey{{s: ml.Peer}, {s: strings.ToLower(ml.Nickname) + "\x00" + ml.Peer}, {n: -float64(ml.Pledged)},
				{n: -float64(ml.Assigned)}, {n: -float64(ml.Acked)}, {n: -float64(ml.Proven)},
				{n: -float64(ml.Audits.Fails), s: ml.Peer}, {n: float64(now.Sub(ml.LastSeen))}, {n: float64(rank), s: ml.Peer}},
		})
	}
	m.heads.rows = m.heads.rows[:0]
	for i, h := range s.Status.RecentHeads {
		m.heads.rows = append(m.heads.rows, row{
			cells: []string{fmt.Sprint(h.Seq), age(now, h.Time), fmt.Sprint(h.Pins), fmt.Sprint(h.Members), fmt.Sprint(h.Log)},
			keys:  []sortKey{{n: float64(i)}, {}, {n: -float64(h.Pins)}},
		})
	}
	m.acks.rows = m.acks.rows[:0]
	for i, a := range s.Status.RecentAcks {
		m.acks.rows = append(m.acks.rows, row{
			cells: []string{age(now, a.Time), shortPeer(a.Peer), fmt.Sprint(a.Shard), a.State, fmt.Sprint(a.Seq)},
			keys:  []sortKey{{n: float64(i)}, {s: a.Peer}, {n: float64(a.Shard)}, {s: a.State}},
		})
	}
}

// health sums up the shards, counting proven holders only (a copy is held
// once an audit proved it): counts per status, under-replicated bytes, a
// histogram of proven holders, and the copies only claimed.
type health struct {
	counts     map[string]int
	underBytes int64 // bytes of shards with fewer proven holders than their target
	missing    int   // proven copies missing to reach every target
	hist       [maxHistogram + 1]int
	claims     copies             // ACKed, not (yet) proven
	oldest     *curator.ShardInfo // the shard below target longest, if any
}

// stuckShards returns the shards below their target, longest in their
// status first (unknown times last), then by ID.
func stuckShards(ss []curator.ShardInfo) []curator.ShardInfo {
	var out []curator.ShardInfo
	for _, s := range ss {
		if s.Status == curator.ShardBelowMin || s.Status == curator.ShardUnder {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b curator.ShardInfo) int {
		switch {
		case a.Since.IsZero() != b.Since.IsZero():
			if a.Since.IsZero() {
				return 1
			}
			return -1
		case !a.Since.Equal(b.Since):
			return a.Since.Compare(b.Since)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

func shardHealth(ss []curator.ShardInfo) health {
	h := health{counts: map[string]int{}, claims: claimed(ss)}
	if stuck := stuckShards(ss); len(stuck) > 0 {
		h.oldest = &stuck[0]
	}
	for _, s := range ss {
		h.counts[s.Status]++
		if s.Proven < s.Max {
			h.underBytes += s.Bytes
			h.missing += s.Max - max(s.Proven, 0)
		}
		h.hist[min(max(s.Proven, 0), maxHistogram)]++
	}
	return h
}

func (h health) summary(total int) string {
	return fmt.Sprintf("shards %d (proven holders): below-min %d · under %d · at-target %d · over %d · under-replicated %s (%d copies missing)",
		total, h.counts[curator.ShardBelowMin], h.counts[curator.ShardUnder], h.counts[curator.ShardAtTarget],
		h.counts[curator.ShardOver], ibytes(h.underBytes), h.missing)
}

// claimsLine is the copies claimed and not counted.
func (h health) claimsLine() string {
	return fmt.Sprintf("ACKed, not yet proven %d · audit failed %d", h.claims.unproven, h.claims.failed)
}

// histogram draws one line per proven-holder count with bar, whose width
// is set, then the line of copies ACKed and not counted.
func (h health) histogram(bar progress.Model) []string {
	most := 1
	for _, n := range h.hist {
		most = max(most, n)
	}
	var lines []string
	for i, n := range h.hist {
		label := fmt.Sprintf("%d ", i)
		if i == maxHistogram {
			label = fmt.Sprintf("%d+", i)
		}
		lines = append(lines, fmt.Sprintf("%s proven %s %d", label, bar.ViewAs(float64(n)/float64(most)), n))
	}
	claims := h.claimsLine()
	if h.claims.failed > 0 {
		claims = warnStyle.Render(claims)
	}
	return append(lines, claims)
}

// block is the shard health as a column of text beside the histogram,
// drawn with bar at the width that fits.
func (h health) block(total, w, height int, bar progress.Model, now time.Time) []string {
	left := []string{
		titleStyle.Render(fmt.Sprintf("shard health · %s", english.Plural(total, "shard", ""))),
		fmt.Sprintf("below-min %d · under %d", h.counts[curator.ShardBelowMin], h.counts[curator.ShardUnder]),
		fmt.Sprintf("at-target %d · over %d", h.counts[curator.ShardAtTarget], h.counts[curator.ShardOver]),
		"under-replicated " + ibytes(h.underBytes),
		fmt.Sprintf("%d copies missing", h.missing),
		dimStyle.Render("holders count once proven"),
	}
	if h.counts[curator.ShardBelowMin] > 0 {
		left[1] = warnStyle.Render(left[1])
	}
	if o := h.oldest; o != nil { // the full reason is in `curate shards ls`
		left[5] = warnStyle.Render(fmt.Sprintf("longest stuck: shard %d%s", o.ID, forText(o.Since, now)))
	}
	leftW := min(w/2, 30)
	rightW := w - leftW - 1
	bar.Width = max(min(rightW-15, 40), 4)
	hist := h.histogram(bar)
	return besides(padLines(left[:min(height, len(left))], leftW, height), hist[:min(height, len(hist))], " ")
}

type curatorLayout struct {
	hist, members, recent int
}

func (m *CuratorModel) layout() curatorLayout {
	_, h := m.size()
	// The histogram and the line of claims beneath it.
	l := curatorLayout{hist: maxHistogram + 2}
	fixed := 2 + 1 // header, footer
	if m.err != nil {
		fixed++
	}
	if m.snap.Note != "" {
		fixed++
	}
	if h-fixed-l.hist < 10 {
		l.hist = max(h-fixed-10, 0)
	}
	rest := max(h-fixed-l.hist, 0)
	// Members get the rows they need, up to half the room when the recent
	// panes need the rest.
	needM := len(m.members.visible()) + 2
	needR := max(len(m.heads.visible()), len(m.acks.visible())) + 2
	l.members = min(needM, max(rest/2, rest-needR), rest)
	l.members = max(l.members, min(rest, 3))
	l.recent = rest - l.members
	return l
}

func (m *CuratorModel) page(i int) int {
	l := m.layout()
	if i == paneMembers {
		return max(l.members-2, 1)
	}
	return max(l.recent-2, 1)
}

// View renders the dashboard to fit the terminal.
func (m *CuratorModel) View() string {
	w, h := m.size()
	title := m.opt.Title
	if title == "" {
		title = "pinfold curator"
	}
	if !m.loaded {
		lines := []string{titleStyle.Render(title), ""}
		if m.err != nil {
			lines = append(lines, banner("curator", m.err, w))
		} else {
			lines = append(lines, "connecting to the curator daemon…")
		}
		return join([][]string{padLines(lines, w, h-1), {m.footer()}}, w, h)
	}
	s := m.snap.Status
	var blocks [][]string
	l1 := titleStyle.Render(title) + fmt.Sprintf(" · %s · %s · peers %d · members %d", s.Cluster, shortPeer(s.Peer), s.Peers, s.Members)
	l2 := "no verified head yet"
	if s.Head != nil {
		l2 = fmt.Sprintf("head seq %d %s ago by %s", s.Head.Seq, age(m.now, s.Head.Time), shortPeer(s.Head.Signer))
	}
	l2 += fmt.Sprintf(" · pins %d (%s) · pending log %d", s.Pins, ibytes(s.Bytes), s.PendingLog)
	blocks = append(blocks, []string{l1, l2})
	if m.snap.Note != "" {
		blocks = append(blocks, []string{m.snap.Note})
	}
	if m.err != nil {
		blocks = append(blocks, []string{banner("curator", m.err, w)})
	}
	l := m.layout()
	blocks = append(blocks, shardHealth(m.snap.Shards).block(len(m.snap.Shards), w, l.hist, m.bar, m.now))
	if m.showHelp {
		blocks = append(blocks, padLines(m.helpScreen("curator daemon"), w, l.members+l.recent))
	} else {
		blocks = append(blocks, m.members.view(w, l.members, m.focus == paneMembers))
		left := w / 2
		right := w - left - 1
		blocks = append(blocks, besides(m.heads.view(left, l.recent, m.focus == paneHeads),
			m.acks.view(right, l.recent, m.focus == paneAcks), " "))
	}
	blocks = append(blocks, []string{m.footer()})
	return join(blocks, w, h)
}
