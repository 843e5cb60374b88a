package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// Default screen size until the terminal reports one.
const (
	defaultWidth  = 80
	defaultHeight = 24
)

// frame is what both dashboards share: the screen size, the focusable
// panes, the help screen and the poller.
type frame struct {
	poller
	width, height int
	panes         []*table
	focus         int
	help          bool
}

// key handles a key press common to both dashboards; page(i) is how many
// rows pane i shows at the current size.
func (f *frame) key(msg tea.KeyMsg, page func(i int) int) tea.Cmd {
	if msg.Type == tea.KeyCtrlC {
		return tea.Quit
	}
	// Keys typed quickly (or sent by tmux) may arrive as one message of
	// several runes: handle them one by one.
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
		for _, r := range msg.Runes {
			if cmd := f.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt}, page); cmd != nil {
				return cmd
			}
		}
		return nil
	}
	if len(f.panes) > 0 && f.panes[f.focus].editing {
		f.panes[f.focus].editKey(msg)
		return nil
	}
	if f.help {
		switch msg.String() {
		case "q":
			return tea.Quit
		case "?", "esc":
			f.help = false
		}
		return nil
	}
	switch msg.String() {
	case "q":
		return tea.Quit
	case "?":
		f.help = true
	case "tab", "right", "l":
		f.focus = (f.focus + 1) % len(f.panes)
	case "shift+tab", "left", "h":
		f.focus = (f.focus + len(f.panes) - 1) % len(f.panes)
	case "esc":
		f.panes[f.focus].filter = ""
	default:
		tableKey(f.panes[f.focus], msg, page(f.focus))
	}
	return nil
}

func (f *frame) resize(msg tea.WindowSizeMsg) {
	f.width, f.height = msg.Width, msg.Height
}

func (f *frame) size() (int, int) {
	w, h := f.width, f.height
	if w <= 0 || h <= 0 {
		return defaultWidth, defaultHeight
	}
	return w, h
}

// footer is the key reminder on the last line.
func (f *frame) footer(note string) string {
	if len(f.panes) > 0 && f.panes[f.focus].editing {
		return dimStyle.Render("type to filter · enter apply · esc clear")
	}
	s := "tab pane · ↑↓ scroll · / filter · s sort · ? help · q quit"
	if note != "" {
		s += " (" + note + ")"
	}
	return dimStyle.Render(s)
}

// helpLines is the help screen; note replaces its last line.
func helpLines(what, note string) []string {
	lines := []string{
		titleStyle.Render("keys"),
		"  tab, →, l          next pane",
		"  shift-tab, ←, h    previous pane",
		"  ↑ ↓ (k j)          scroll the focused pane",
		"  pgup pgdn          scroll a page",
		"  home end (g G)     first / last rows",
		"  /                  filter the focused pane: type, enter to apply, esc to clear",
		"  s                  sort the focused pane by the next column",
		"  ?                  this help (esc or ? closes it)",
		"  q, ctrl-c          quit",
		"",
		"The dashboard polls the " + what + "'s control API and never changes anything.",
	}
	if note != "" {
		return append(lines, note)
	}
	return append(lines, "Quitting it leaves the "+what+" running.")
}

// join assembles the screen and makes sure it fits w x h.
func join(blocks [][]string, w, h int) string {
	var lines []string
	for _, b := range blocks {
		lines = append(lines, b...)
	}
	return fit(strings.Join(lines, "\n"), w, h)
}
