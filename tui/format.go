package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"

	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/headsync"
)

// Styles. With no colour profile (tests, pipes) they render as plain text.
var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	focusStyle  = lipgloss.NewStyle().Bold(true).Reverse(true)
	headStyle   = lipgloss.NewStyle().Bold(true).Underline(true)
	dimStyle    = lipgloss.NewStyle().Faint(true)
	bannerStyle = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	warnStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("11"))
	goodStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
)

func ibytes(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

// shortPeer abbreviates a peer ID to its first 4 and last 6 characters.
func shortPeer(p string) string {
	if len(p) > 12 {
		return p[:4] + "…" + p[len(p)-6:]
	}
	return p
}

// age is a compact duration since t: 42s, 3m, 5h, 2d, or "never".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// newBar returns the progress bar of the storage, fetch and histogram
// lines, drawn with ViewAs (a value per redraw: no animation) at a width
// each caller sets. "█" and "░" keep it legible without colour. It takes
// the colour profile lipgloss uses rather than detecting its own, so that
// with none (pipes, tests) it writes no escape codes, like the styles.
func newBar() progress.Model {
	return progress.New(
		progress.WithoutPercentage(),
		progress.WithFillCharacters('█', '░'),
		progress.WithSolidFill("12"),
		progress.WithColorProfile(lipgloss.ColorProfile()),
	)
}

// rate formats bytes per second.
func rate(bps float64) string {
	return humanize.IBytes(uint64(max(bps, 0))) + "/s"
}

// fit cuts s to at most h lines of at most w cells each.
func fit(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return strings.Join(lines, "\n")
}

// cell pads or cuts s to exactly w cells, right-aligned when right.
func cell(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	pad := strings.Repeat(" ", w-sw)
	if right {
		return pad + s
	}
	return s + pad
}

// padLines returns exactly h lines, each at most w cells wide.
func padLines(lines []string, w, h int) []string {
	out := make([]string, h)
	for i := range out {
		if i < len(lines) {
			out[i] = cell(lines[i], w, false)
		} else {
			out[i] = strings.Repeat(" ", max(w, 0))
		}
	}
	return out
}

// besides joins two blocks of equal height side by side.
func besides(a, b []string, sep string) []string {
	out := make([]string, max(len(a), len(b)))
	for i := range out {
		var l, r string
		if i < len(a) {
			l = a[i]
		}
		if i < len(b) {
			r = b[i]
		}
		out[i] = l + sep + r
	}
	return out
}

// banner is the one-line "<what> unreachable" notice, its error cut so
// that "retrying" stays visible within w cells.
func banner(what string, err error, w int) string {
	pre, post := what+" unreachable: ", " — retrying"
	msg := err.Error()
	if room := w - ansi.StringWidth(pre) - ansi.StringWidth(post); ansi.StringWidth(msg) > room {
		msg = ansi.Truncate(msg, max(room, 1), "…")
	}
	return bannerStyle.Render(pre + msg + post)
}

// clean replaces control characters (escape sequences included) with
// '?': peers choose some of the text shown (nicknames, rejected input),
// and it must not drive the terminal.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// cleanFollower returns s with every string it shows cleaned.
func cleanFollower(s follower.Status) follower.Status {
	for _, p := range []*string{&s.Cluster, &s.ClusterName, &s.ClusterID, &s.Peer, &s.Nickname, &s.Pinset.Error, &s.Why, &s.DiskError} {
		*p = clean(*p)
	}
	if s.Head != nil {
		h := *s.Head
		h.Signer, h.CID = clean(h.Signer), clean(h.CID)
		s.Head = &h
	}
	s.Curators = slices.Clone(s.Curators)
	for i := range s.Curators {
		s.Curators[i].Peer = clean(s.Curators[i].Peer)
	}
	s.Shards = slices.Clone(s.Shards)
	for i := range s.Shards {
		r := &s.Shards[i]
		r.State, r.Error, r.Audit, r.AuditReason = clean(r.State), clean(r.Error), clean(r.Audit), clean(r.AuditReason)
	}
	s.Audits.FailReason = clean(s.Audits.FailReason)
	s.Events = slices.Clone(s.Events)
	for i := range s.Events {
		s.Events[i].Kind, s.Events[i].Text = clean(s.Events[i].Kind), clean(s.Events[i].Text)
	}
	s.Rejections = slices.Clone(s.Rejections)
	for i := range s.Rejections {
		r := &s.Rejections[i]
		r.Source, r.Peer, r.Reason, r.Error = headsync.Source(clean(string(r.Source))), clean(r.Peer), clean(r.Reason), clean(r.Error)
	}
	rej := make(map[string]uint64, len(s.Rejected))
	for k, v := range s.Rejected {
		rej[clean(k)] += v
	}
	s.Rejected = rej
	return s
}

// cleanCurator returns snap with every string it shows cleaned.
func cleanCurator(snap CuratorSnapshot) CuratorSnapshot {
	snap.Note = clean(snap.Note)
	s := &snap.Status
	for _, p := range []*string{&s.Cluster, &s.ClusterID, &s.Peer} {
		*p = clean(*p)
	}
	if s.Head != nil {
		h := *s.Head
		h.Signer, h.CID = clean(h.Signer), clean(h.CID)
		s.Head = &h
	}
	s.Curators = slices.Clone(s.Curators)
	for i := range s.Curators {
		s.Curators[i] = clean(s.Curators[i])
	}
	s.RecentHeads = slices.Clone(s.RecentHeads)
	for i := range s.RecentHeads {
		s.RecentHeads[i].CID = clean(s.RecentHeads[i].CID)
	}
	s.RecentAcks = slices.Clone(s.RecentAcks)
	for i := range s.RecentAcks {
		s.RecentAcks[i].Peer, s.RecentAcks[i].State = clean(s.RecentAcks[i].Peer), clean(s.RecentAcks[i].State)
	}
	snap.Members = slices.Clone(snap.Members)
	for i := range snap.Members {
		m := &snap.Members[i]
		m.Peer, m.Nickname, m.State = clean(m.Peer), clean(m.Nickname), clean(m.State)
		m.Standing, m.StandingWhy, m.Refused = clean(m.Standing), clean(m.StandingWhy), clean(m.Refused)
		m.Audits.FailReason = clean(m.Audits.FailReason)
	}
	snap.Shards = slices.Clone(snap.Shards)
	for i := range snap.Shards {
		sh := &snap.Shards[i]
		sh.Status = clean(sh.Status)
		sh.Holders = slices.Clone(sh.Holders)
		for j := range sh.Holders {
			h := &sh.Holders[j]
			h.Peer, h.Nickname, h.State = clean(h.Peer), clean(h.Nickname), clean(h.State)
			h.Audit, h.AuditReason = clean(h.Audit), clean(h.AuditReason)
		}
	}
	return snap
}

// clusterLabel names a follower's cluster: its local name, and the
// curators' name for it when that differs.
func clusterLabel(s follower.Status) string {
	if s.ClusterName == "" || s.ClusterName == s.Cluster {
		return s.Cluster
	}
	return s.Cluster + " (" + s.ClusterName + ")"
}

// PinsetState is how far a follower's pinset replica is: caught up with
// the newest head or syncing, and the error that holds it back if any.
// While no curator is reachable it never says "caught up": the newest
// head known may not be the newest there is.
func PinsetState(p follower.PinsetInfo) string {
	state := "syncing"
	switch {
	case p.NoCuratorSince != nil:
		state = NoCurator(*p.NoCuratorSince)
		if !p.CaughtUp {
			state = "syncing; " + state
		}
	case p.CaughtUp:
		state = "caught up"
	}
	if p.Error != "" {
		state += " (" + p.Error + ")"
	}
	return state
}

// NoCurator says since when no curator has been reachable.
func NoCurator(since time.Time) string {
	return "no curator reachable since " + since.UTC().Format("2006-01-02 15:04:05 UTC") + "; the pinset may be behind"
}

// Reachable counts the curators a follower is connected to.
func Reachable(cs []follower.CuratorInfo) int {
	n := 0
	for _, c := range cs {
		if c.Connected {
			n++
		}
	}
	return n
}
