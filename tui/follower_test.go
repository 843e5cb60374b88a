package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pinfold/pinfold/follower"
)

func staticFollower(s follower.Status) FollowerSource {
	return func(context.Context) (follower.Status, error) { return s, nil }
}

// loadedFollower returns a follower model at size w x h that received the
// fixture twice, one second apart, so fetching shards have a rate.
func loadedFollower(w, h int) *FollowerModel {
	s := followerFixture()
	m := NewFollowerModel(staticFollower(s), Options{Now: fixedNow})
	first := followerFixture()
	first.Shards[2].Fetched -= 3 << 20 // shard 3: 3 MiB in the last second
	first.Shards[3].Fetched = 0        // shard 4: stalled
	feed(m, tea.WindowSizeMsg{Width: w, Height: h},
		followerMsg{status: first, at: now.Add(-time.Second)},
		followerMsg{status: s, at: now})
	return m
}

func TestFollowerGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
		keys []string
	}{
		{"follower_80x24", 80, 24, nil},
		{"follower_120x40", 120, 40, nil},
		{"follower_80x24_events", 80, 24, []string{"tab"}},
		{"follower_80x24_help", 80, 24, []string{"?"}},
		{"follower_80x24_filter", 80, 24, []string{"/", "f", "e", "t", "c", "h"}},
		{"follower_120x40_sort_state", 120, 40, []string{"s", "s", "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadedFollower(tc.w, tc.h)
			typeKeys(m, tc.keys...)
			v := m.View()
			checkFits(t, v, tc.w, tc.h)
			golden(t, tc.name, v)
		})
	}
}

func TestFollowerFits(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {60, 15}, {40, 10}, {200, 60}, {80, 8}, {10, 3}} {
		w, h := size[0], size[1]
		m := loadedFollower(w, h)
		for _, keys := range [][]string{nil, {"tab"}, {"?"}, {"/", "x"}} {
			typeKeys(m, keys...)
			checkFits(t, m.View(), w, h)
		}
		feed(m, followerMsg{err: errDown, at: now})
		checkFits(t, m.View(), w, h)
		// Resizing to a smaller screen.
		feed(m, tea.WindowSizeMsg{Width: w / 2, Height: h / 2})
		checkFits(t, m.View(), max(w/2, 1), max(h/2, 1))
	}
}

func TestFollowerFocus(t *testing.T) {
	m := loadedFollower(80, 24)
	steps := []struct {
		key  string
		want int
	}{{"tab", paneEvents}, {"tab", paneCommitments}, {"shift+tab", paneEvents}, {"left", paneCommitments}, {"right", paneEvents}}
	for i, st := range steps {
		typeKeys(m, st.key)
		if m.focus != st.want {
			t.Fatalf("step %d (%s): focus %d, want %d", i, st.key, m.focus, st.want)
		}
		if v := m.View(); !strings.Contains(v, "▸ "+m.panes[st.want].name) {
			t.Fatalf("step %d: focused pane %q not marked in view:\n%s", i, m.panes[st.want].name, v)
		}
	}
}

func TestFollowerFilter(t *testing.T) {
	m := loadedFollower(80, 24)
	if n := len(m.shards.visible()); n != 10 {
		t.Fatalf("%d rows before filtering, want 10", n)
	}
	typeKeys(m, "/", "q", "u", "e") // q is typed, not quit
	if !m.shards.editing() || m.shards.filter() != "que" {
		t.Fatalf("editing %v filter %q", m.shards.editing(), m.shards.filter())
	}
	if n := len(m.shards.visible()); n != 2 {
		t.Fatalf("while typing que: %d rows, want 2 (the filter applies live)", n)
	}
	typeKeys(m, "enter")
	rows := m.shards.visible()
	if len(rows) != 2 || rows[0].cells[0] != "5" || rows[1].cells[0] != "7" {
		t.Fatalf("filter que: rows %v, want shards 5 and 7", rowIDs(rows))
	}
	if v := m.View(); !strings.Contains(v, `2 of 10`) || !strings.Contains(v, `filter "que"`) {
		t.Fatalf("view does not show the filter:\n%s", v)
	}
	// A filter on the events pane leaves commitments alone.
	typeKeys(m, "tab", "/", "r", "e", "j", "enter")
	if n := len(m.events.visible()); n != 1 {
		t.Fatalf("events filtered by rej: %d rows, want 1", n)
	}
	typeKeys(m, "esc")
	if n := len(m.events.visible()); n != 8 {
		t.Fatalf("after esc: %d events, want 8", n)
	}
	if n := len(m.shards.visible()); n != 2 {
		t.Fatalf("commitments filter lost: %d rows", n)
	}
	// esc while typing clears the filter.
	typeKeys(m, "shift+tab", "/", "x", "esc")
	if m.shards.filter() != "" || m.shards.editing() {
		t.Fatalf("esc while typing: filter %q editing %v", m.shards.filter(), m.shards.editing())
	}
	typeKeys(m, "/", "z", "z", "backspace", "enter")
	if m.shards.filter() != "z" || len(m.shards.visible()) != 0 {
		t.Fatalf("backspace: filter %q rows %d", m.shards.filter(), len(m.shards.visible()))
	}
	if !strings.Contains(m.View(), "no rows match the filter") {
		t.Fatal("empty filter result not explained")
	}
}

// TestFollowerFilterPaste checks pasted text: it never acts as keys, and
// in the filter control characters are dropped and q is text, not quit.
func TestFollowerFilterPaste(t *testing.T) {
	m := loadedFollower(80, 24)
	if cmd := feed(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s/q"), Paste: true}); isQuit(cmd) || m.shards.sortCol != 0 || m.shards.editing() {
		t.Fatalf("a paste acted as keys: quit %v, sort column %d, editing %v", isQuit(cmd), m.shards.sortCol, m.shards.editing())
	}
	typeKeys(m, "/")
	if cmd := feed(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("qu\x1b[2Je\x07"), Paste: true}); isQuit(cmd) {
		t.Fatal("a pasted q quits while typing a filter")
	}
	if f := m.shards.filter(); f != "qu[2Je" {
		t.Fatalf("pasted filter %q, want control characters dropped", f)
	}
	checkFits(t, m.View(), 80, 24)
}

// TestFollowerRunesAtOnce checks keys that arrive as one multi-rune
// message, as from tmux send-keys or fast typing.
func TestFollowerRunesAtOnce(t *testing.T) {
	m := loadedFollower(80, 24)
	typeKeys(m, "/que", "enter")
	if m.shards.filter() != "que" || m.shards.editing() {
		t.Fatalf("filter %q editing %v", m.shards.filter(), m.shards.editing())
	}
	if cmd := feed(m, press("sq")); !isQuit(cmd) {
		t.Fatal("q in a multi-rune message does not quit")
	}
	if m.shards.sortCol != 1 {
		t.Fatalf("s in a multi-rune message: sort column %d", m.shards.sortCol)
	}
}

func rowIDs(rows []row) []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.cells[0])
	}
	return ids
}

func TestFollowerSort(t *testing.T) {
	m := loadedFollower(120, 40)
	want := []struct {
		col string
		ids string
	}{
		{"shard", "1 2 3 4 5 6 7 8 10 11"},
		{"size", "1 3 2 5 4 7 6 8 10 11"},
		{"pins", "1 3 2 5 4 7 6 8 10 11"},
		// Stored shards: a failed audit first, then not ACKed, ACKed, proven.
		{"state", "3 4 5 7 10 2 8 11 1 6"},
		{"holders", "3 7 2 4 10 11 1 5 8 6"},
		{"shard", "1 2 3 4 5 6 7 8 10 11"},
	}
	for i, w := range want {
		if i > 0 {
			typeKeys(m, "s")
		}
		if got := strings.Join(rowIDs(m.shards.visible()), " "); got != w.ids {
			t.Errorf("sort %d (%s): %s, want %s", i, w.col, got, w.ids)
		}
		if v := m.View(); !strings.Contains(v, "sort "+w.col) {
			t.Errorf("view does not say sort %s", w.col)
		}
	}
}

func TestFollowerScroll(t *testing.T) {
	m := loadedFollower(80, 20)
	page := m.page(paneCommitments)
	if page >= 10 {
		t.Fatalf("page %d shows every row; the test needs fewer", page)
	}
	typeKeys(m, "down")
	if m.shards.offset != 1 {
		t.Fatalf("down: offset %d", m.shards.offset)
	}
	typeKeys(m, "pgdown", "pgdown", "pgdown")
	if want := 10 - page; m.shards.offset != want {
		t.Fatalf("pgdown: offset %d, want %d", m.shards.offset, want)
	}
	if v := m.View(); !strings.Contains(v, fmt.Sprintf("%d-10", 10-page+1)) {
		t.Fatalf("view does not show the scroll position:\n%s", v)
	}
	typeKeys(m, "up", "up", "up", "up", "up", "up", "up", "up")
	if m.shards.offset != 0 {
		t.Fatalf("up: offset %d", m.shards.offset)
	}
}

func TestFollowerHelp(t *testing.T) {
	m := loadedFollower(80, 24)
	typeKeys(m, "?")
	if !m.showHelp || !strings.Contains(m.View(), "Quitting it leaves the follower running") {
		t.Fatalf("help not shown:\n%s", m.View())
	}
	typeKeys(m, "?")
	if m.showHelp || strings.Contains(m.View(), "Quitting it leaves") {
		t.Fatal("help not hidden")
	}
	// On a narrow screen the help lines are cut where their text is, not
	// where padding would be.
	feed(m, tea.WindowSizeMsg{Width: 50, Height: 24}, press("?"))
	for _, l := range strings.Split(m.View(), "\n") {
		if strings.Contains(l, "next pane") && strings.HasSuffix(l, "…") {
			t.Fatalf("short help line cut at 50 columns: %q", l)
		}
	}
	m2 := NewFollowerModel(staticFollower(followerFixture()), Options{Now: fixedNow, QuitNote: "stops the follower", Help: "Quitting stops the follower too: it runs in this process."})
	feed(m2, followerMsg{status: followerFixture(), at: now}, press("?"))
	if v := m2.View(); !strings.Contains(v, "Quitting stops the follower too") || !strings.Contains(v, "q quit (stops the follower)") {
		t.Fatalf("quit note not in help:\n%s", m2.View())
	}
}

func TestFollowerQuit(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m := loadedFollower(80, 24)
		if cmd := feed(m, press(k)); !isQuit(cmd) {
			t.Errorf("%s does not quit", k)
		}
	}
	// While typing a filter, q is text and ctrl-c still quits.
	m := loadedFollower(80, 24)
	if cmd := feed(m, press("/"), press("q")); isQuit(cmd) {
		t.Error("q quits while typing a filter")
	}
	if cmd := feed(m, press("ctrl+c")); !isQuit(cmd) {
		t.Error("ctrl-c does not quit while typing a filter")
	}
}

func TestFollowerUnreachable(t *testing.T) {
	m := loadedFollower(80, 24)
	feed(m, followerMsg{err: errDown, at: now.Add(time.Second)})
	v := m.View()
	checkFits(t, v, 80, 24)
	if !strings.Contains(v, "follower unreachable: follower: not running") || !strings.Contains(v, "retrying") {
		t.Fatalf("no banner:\n%s", v)
	}
	if !strings.Contains(v, "ACKed at seq 42") {
		t.Fatalf("last data dropped:\n%s", v)
	}
	golden(t, "follower_80x24_unreachable", v)
	feed(m, followerMsg{status: followerFixture(), at: now.Add(2 * time.Second)})
	if v := m.View(); strings.Contains(v, "unreachable") {
		t.Fatalf("banner stays after recovery:\n%s", v)
	}

	// Never reached: the banner alone.
	m = NewFollowerModel(staticFollower(follower.Status{}), Options{Now: fixedNow})
	feed(m, tea.WindowSizeMsg{Width: 80, Height: 24}, followerMsg{err: errDown, at: now})
	if v := m.View(); !strings.Contains(v, "follower unreachable") {
		t.Fatalf("no banner before the first status:\n%s", v)
	}
}

func TestFollowerRate(t *testing.T) {
	m := NewFollowerModel(staticFollower(follower.Status{}), Options{Now: fixedNow})
	poll := func(fetched int64, at time.Time) {
		feed(m, followerMsg{at: at, status: follower.Status{Shards: []follower.ShardStatus{
			{ID: 3, Bytes: 100 << 20, State: follower.ShardFetching, Fetched: fetched},
		}}})
	}
	poll(10<<20, now)
	if _, ok := m.Rate(3); ok {
		t.Fatal("rate after one poll")
	}
	poll(14<<20, now.Add(2*time.Second))
	if bps, ok := m.Rate(3); !ok || bps != 2<<20 {
		t.Fatalf("rate %v %v, want 2 MiB/s", bps, ok)
	}
	if !strings.Contains(m.View(), "2.0 MiB/s") {
		t.Fatalf("rate not shown:\n%s", m.View())
	}
	poll(14<<20, now.Add(3*time.Second))
	if bps, _ := m.Rate(3); bps != 0 {
		t.Fatalf("stalled rate %v, want 0", bps)
	}
	// A shard that stops fetching forgets its rate.
	feed(m, followerMsg{at: now.Add(4 * time.Second), status: follower.Status{Shards: []follower.ShardStatus{
		{ID: 3, Bytes: 100 << 20, State: follower.ShardStored, Fetched: 100 << 20},
	}}})
	if _, ok := m.Rate(3); ok {
		t.Fatal("rate kept after fetching ended")
	}
}

// TestFollowerPolling checks one fetch in flight at a time and a tick
// between fetches.
func TestFollowerPolling(t *testing.T) {
	calls := 0
	src := func(context.Context) (follower.Status, error) { calls++; return followerFixture(), nil }
	m := NewFollowerModel(src, Options{Now: fixedNow, Interval: time.Hour})
	fetch := m.Init()
	if fetch == nil {
		t.Fatal("Init starts no fetch")
	}
	if cmd := feed(m, tickMsg{}); cmd != nil {
		t.Fatal("tick starts a second fetch while one is in flight")
	}
	msg := fetch()
	if calls != 1 {
		t.Fatalf("%d calls", calls)
	}
	next := feed(m, msg)
	if next == nil {
		t.Fatal("no tick scheduled after a fetch")
	}
	if cmd := feed(m, tickMsg{}); cmd == nil {
		t.Fatal("tick after a fetch starts none")
	}
}

// TestFollowerProgram runs the model in a real, headless tea.Program and
// quits it with a key.
func TestFollowerProgram(t *testing.T) {
	m := NewFollowerModel(staticFollower(followerFixture()), Options{Now: fixedNow, Interval: 10 * time.Millisecond})
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

// FuzzViewFits checks that any size, filter and key sequence renders
// within the screen.
func FuzzViewFits(f *testing.F) {
	f.Add(uint8(80), uint8(24), "que", "\t?s")
	f.Add(uint8(1), uint8(1), "", "")
	f.Add(uint8(33), uint8(7), "日本語", "/x\x1b")
	f.Fuzz(func(t *testing.T, w, h uint8, filter, keys string) {
		width, height := max(int(w), 1), max(int(h), 1)
		fm := loadedFollower(width, height)
		cm := loadedCurator(width, height)
		for _, m := range []tea.Model{fm, cm} {
			for _, r := range keys {
				switch r {
				case '\t':
					m.Update(press("tab"))
				case '\x1b':
					m.Update(press("esc"))
				case '\r':
					m.Update(press("enter"))
				default:
					m.Update(press(string(r)))
				}
			}
			m.Update(press("/"))
			for _, r := range filter {
				m.Update(press(string(r)))
			}
			checkFits(t, m.View(), width, height)
		}
	})
}
