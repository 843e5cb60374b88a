package tui

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pinfold/pinfold/curator"
)

func staticCurator(s CuratorSnapshot) CuratorSource {
	return func(context.Context) (CuratorSnapshot, error) { return s, nil }
}

func loadedCurator(w, h int) *CuratorModel {
	m := NewCuratorModel(staticCurator(curatorFixture()), Options{Now: fixedNow})
	feed(m, tea.WindowSizeMsg{Width: w, Height: h}, curatorMsg{snap: curatorFixture(), at: now})
	return m
}

var errCuratorDown = errors.New("curator: daemon is not running (start it with 'curate daemon'): dial tcp 127.0.0.1:9650: connect: connection refused")

func TestCuratorGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
		keys []string
	}{
		{"curator_80x24", 80, 24, nil},
		{"curator_120x40", 120, 40, nil},
		{"curator_80x24_acks", 80, 24, []string{"tab", "tab"}},
		{"curator_120x40_sort_acked", 120, 40, []string{"s", "s", "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadedCurator(tc.w, tc.h)
			typeKeys(m, tc.keys...)
			v := m.View()
			checkFits(t, v, tc.w, tc.h)
			golden(t, tc.name, v)
		})
	}
}

func TestCuratorFits(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {60, 15}, {40, 10}, {200, 60}, {80, 8}, {10, 3}} {
		w, h := size[0], size[1]
		m := loadedCurator(w, h)
		for _, keys := range [][]string{nil, {"tab"}, {"?"}, {"/", "x"}} {
			typeKeys(m, keys...)
			checkFits(t, m.View(), w, h)
		}
		feed(m, curatorMsg{err: errCuratorDown, at: now})
		checkFits(t, m.View(), w, h)
	}
}

// TestCuratorNote: a source's note line shows under the header and the
// view still fits, at every size.
func TestCuratorNote(t *testing.T) {
	snap := curatorFixture()
	snap.Note = "[ 12.5s] follower dave joins, pledging 120 MiB: the allocation rebalances"
	m := NewCuratorModel(staticCurator(snap), Options{Now: fixedNow, Title: "pinfold demo"})
	feed(m, tea.WindowSizeMsg{Width: 80, Height: 24}, curatorMsg{snap: snap, at: now})
	v := m.View()
	checkFits(t, v, 80, 24)
	golden(t, "curator_80x24_note", v)
	if lines := strings.Split(v, "\n"); !strings.Contains(lines[2], "dave joins") {
		t.Fatalf("note not on the line under the header:\n%s", v)
	}
	for _, size := range [][2]int{{120, 40}, {60, 15}, {40, 10}, {10, 3}} {
		feed(m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		checkFits(t, m.View(), size[0], size[1])
	}
}

func TestCuratorHealth(t *testing.T) {
	h := shardHealth(curatorFixture().Shards)
	if h.counts[curator.ShardBelowMin] != 2 || h.counts[curator.ShardUnder] != 1 || h.counts[curator.ShardAtTarget] != 2 || h.counts[curator.ShardOver] != 1 {
		t.Fatalf("counts %v", h.counts)
	}
	if want := gib + 2*gib + 512<<20; h.underBytes != want {
		t.Fatalf("under-replicated %d, want %d", h.underBytes, want)
	}
	if h.missing != 1+2+3 {
		t.Fatalf("missing %d, want 6", h.missing)
	}
	if h.hist != [maxHistogram + 1]int{1, 1, 1, 2, 1} {
		t.Fatalf("histogram %v", h.hist)
	}
}

func TestCuratorKeys(t *testing.T) {
	m := loadedCurator(80, 24)
	typeKeys(m, "tab", "tab")
	if m.focus != paneAcks {
		t.Fatalf("focus %d", m.focus)
	}
	typeKeys(m, "tab")
	if m.focus != paneMembers {
		t.Fatalf("focus wraps to %d", m.focus)
	}
	typeKeys(m, "/", "a", "c", "t", "i", "v", "e", "enter")
	if n := len(m.members.visible()); n != 1 {
		t.Fatalf("filter active: %d members, want 1 (basement is active, but failing)", n)
	}
	typeKeys(m, "esc", "/", "f", "a", "i", "l", "i", "n", "g", "enter")
	if got := strings.Join(rowIDs(m.members.visible()), " "); got != "12D3…mmm222" {
		t.Fatalf("filter failing: %s, want basement only", got)
	}
	typeKeys(m, "esc")
	typeKeys(m, "s", "s", "s") // nickname -> pledged -> assigned -> acked
	if got := strings.Join(rowIDs(m.members.visible()), " "); got != "12D3…mmm222 12D3…aaaaaa 12D3…mmm333 12D3…xxx999" {
		t.Fatalf("sorted by acked: %s", got)
	}
	if cmd := feed(m, press("q")); !isQuit(cmd) {
		t.Fatal("q does not quit")
	}
}

func TestCuratorUnreachable(t *testing.T) {
	m := loadedCurator(80, 24)
	feed(m, curatorMsg{err: errCuratorDown, at: now})
	v := m.View()
	if !strings.Contains(v, "curator unreachable: curator: daemon is not running") || !strings.Contains(v, "— retrying") {
		t.Fatalf("no banner:\n%s", v)
	}
	if !strings.Contains(v, "basement") {
		t.Fatalf("last data dropped:\n%s", v)
	}
	golden(t, "curator_80x24_unreachable", v)
	feed(m, curatorMsg{snap: curatorFixture(), at: now})
	if strings.Contains(m.View(), "unreachable") {
		t.Fatal("banner stays after recovery")
	}
}

func TestCuratorProgram(t *testing.T) {
	m := NewCuratorModel(staticCurator(curatorFixture()), Options{Now: fixedNow, Interval: 10 * time.Millisecond})
	p := tea.NewProgram(m, tea.WithInput(nil), tea.WithOutput(io.Discard))
	done := make(chan error, 1)
	go func() {
		_, err := p.Run()
		done <- err
	}()
	p.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		p.Kill()
		t.Fatal("program did not quit on q")
	}
}

// TestRunContext checks that RunCurator returns nil when its context ends.
func TestRunContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := func(context.Context) (CuratorSnapshot, error) {
		cancel() // the first fetch ends the run
		return curatorFixture(), nil
	}
	err := RunCurator(ctx, src, RunOptions{In: strings.NewReader(""), Out: io.Discard, Options: Options{Now: fixedNow}})
	if err != nil {
		t.Fatalf("RunCurator: %v", err)
	}
}

// TestHostileText checks that text chosen by peers (a nickname, a
// rejection) cannot send escape sequences to the terminal.
func TestHostileText(t *testing.T) {
	snap := curatorFixture()
	snap.Members[0].Nickname = "evil\x1b]0;pwned\x07\x1b[2J"
	snap.Members[1].StandingWhy = "audit: \x1b[2Jgone"
	snap.Shards[2].Holders[1].AuditReason = "\x1b]0;x\x07"
	m := NewCuratorModel(staticCurator(snap), Options{Now: fixedNow})
	feed(m, tea.WindowSizeMsg{Width: 120, Height: 40}, curatorMsg{snap: snap, at: now})
	checkFits(t, m.View(), 120, 40)
	if !strings.Contains(m.View(), "evil?]0;pwned??[2J") || !strings.Contains(m.View(), "audit: ?[2Jgone") {
		t.Fatalf("text from peers not neutralised:\n%s", m.View())
	}
	var b strings.Builder
	if err := PrintCurator(&b, snap, now); err != nil {
		t.Fatal(err)
	}
	checkPlain(t, b.String())

	s := followerFixture()
	s.Rejections[0].Error = "bad\x1b[31mred"
	s.Shards[8].AuditReason = "\x1b[2J"
	s.Audits.FailReason = "\x1b]0;x\x07"
	fm := NewFollowerModel(staticFollower(s), Options{Now: fixedNow})
	feed(fm, tea.WindowSizeMsg{Width: 120, Height: 40}, followerMsg{status: s, at: now})
	checkFits(t, fm.View(), 120, 40)
	b.Reset()
	if err := PrintFollower(&b, s, now); err != nil {
		t.Fatal(err)
	}
	checkPlain(t, b.String())
}
