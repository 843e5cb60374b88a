package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
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
	showHelp      bool // the help screen replaces the panes
	help          help.Model
	bar           progress.Model // copied and sized for each bar drawn
}

func newFrame(opt Options, panes ...*table) frame {
	return frame{poller: poller{opt: opt}, panes: panes, help: newHelp(), bar: newBar()}
}

// handleKey handles a key press common to both dashboards; page(i) is how
// many rows pane i shows at the current size.
func (f *frame) handleKey(msg tea.KeyMsg, page func(i int) int) tea.Cmd {
	// Keys typed quickly (or sent by tmux) may arrive as one message of
	// several runes: handle them one by one, so that "/que" starts a
	// filter and types "que", and "sq" sorts then quits. A paste keeps its
	// flag: key.Matches never matches pasted runes, which only type into
	// a filter.
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			one := tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt, Paste: msg.Paste}
			if f.quits(one) {
				return tea.Quit
			}
			cmds = append(cmds, f.handleKey(one, page))
		}
		return tea.Batch(cmds...)
	}
	if f.quits(msg) {
		return tea.Quit
	}
	if len(f.panes) == 0 {
		return nil
	}
	t := f.panes[f.focus]
	switch {
	case t.editing():
		return t.editKey(msg)
	case f.showHelp:
		if key.Matches(msg, keymap.Help, keymap.Cancel) {
			f.showHelp = false
		}
	case key.Matches(msg, keymap.Help):
		f.showHelp = true
	case key.Matches(msg, keymap.Next):
		f.focus = (f.focus + 1) % len(f.panes)
	case key.Matches(msg, keymap.Prev):
		f.focus = (f.focus + len(f.panes) - 1) % len(f.panes)
	default:
		return t.handleKey(msg, page(f.focus))
	}
	return nil
}

// quits reports whether msg ends the dashboard: ctrl-c always, q unless
// it is typed into a filter.
func (f *frame) quits(msg tea.KeyMsg) bool {
	if key.Matches(msg, keymap.Interrupt) {
		return true
	}
	return key.Matches(msg, keymap.Quit) && !f.editing()
}

// editing reports whether a filter is being typed in the focused pane.
func (f *frame) editing() bool {
	return len(f.panes) > 0 && f.panes[f.focus].editing()
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

// footer is the key reminder on the last line, cut to the screen width
// item by item.
func (f *frame) footer() string {
	hv := f.help
	hv.Width, _ = f.size()
	if f.editing() {
		return hv.ShortHelpView(keymap.editHelp())
	}
	return hv.ShortHelpView(keymap.shortHelp(f.opt.QuitNote))
}

// helpScreen is the help screen of the dashboard watching what.
func (f *frame) helpScreen(what string) []string {
	// No width: help.Model would replace a column wider than the screen
	// with "…", where cutting its lines (padLines) keeps what fits.
	hv := f.help
	hv.Width = 0
	lines := []string{titleStyle.Render("keys")}
	for _, l := range strings.Split(hv.FullHelpView(keymap.fullHelp()), "\n") {
		// help.Model pads every line to the longest; on a narrow screen
		// that padding would be cut with "…" as if text were missing.
		lines = append(lines, strings.TrimRight(l, " "))
	}
	lines = append(lines, "", "The dashboard polls the "+what+"'s control API and never changes anything.")
	if f.opt.Help != "" {
		return append(lines, f.opt.Help)
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
