package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
)

// keyMap holds the keys both dashboards answer to. The bindings carry no
// help text of their own: the footer and the help screen describe some of
// them together (↑ ↓ scroll), so their lines are built by helpLine.
type keyMap struct {
	Interrupt key.Binding // quits even while a filter is typed
	Quit      key.Binding
	Help      key.Binding
	Next      key.Binding // focus the next pane
	Prev      key.Binding
	Up        key.Binding
	Down      key.Binding
	PageUp    key.Binding
	PageDown  key.Binding
	Top       key.Binding
	Bottom    key.Binding
	Filter    key.Binding // start typing a filter
	Sort      key.Binding // sort by the next sortable column
	Apply     key.Binding // keep the typed filter
	Cancel    key.Binding // drop the filter, or close help
}

// keymap is the dashboards' key map: it never changes, so both share it.
var keymap = keyMap{
	Interrupt: key.NewBinding(key.WithKeys("ctrl+c")),
	Quit:      key.NewBinding(key.WithKeys("q")),
	Help:      key.NewBinding(key.WithKeys("?")),
	Next:      key.NewBinding(key.WithKeys("tab", "right", "l")),
	Prev:      key.NewBinding(key.WithKeys("shift+tab", "left", "h")),
	Up:        key.NewBinding(key.WithKeys("up", "k")),
	Down:      key.NewBinding(key.WithKeys("down", "j")),
	PageUp:    key.NewBinding(key.WithKeys("pgup")),
	PageDown:  key.NewBinding(key.WithKeys("pgdown")),
	Top:       key.NewBinding(key.WithKeys("home", "g")),
	Bottom:    key.NewBinding(key.WithKeys("end", "G")),
	Filter:    key.NewBinding(key.WithKeys("/")),
	Sort:      key.NewBinding(key.WithKeys("s")),
	Apply:     key.NewBinding(key.WithKeys("enter")),
	Cancel:    key.NewBinding(key.WithKeys("esc")),
}

// helpLine is one line of help: keys described as desc. It matches the
// keys of bs, so that help.Model shows it exactly when they are enabled.
func helpLine(keys, desc string, bs ...key.Binding) key.Binding {
	var ks []string
	for _, b := range bs {
		if b.Enabled() {
			ks = append(ks, b.Keys()...)
		}
	}
	return key.NewBinding(key.WithKeys(ks...), key.WithHelp(keys, desc))
}

// shortHelp is the footer: how to move around, in one line that fits 80
// columns with a QuitNote of a few words.
func (k keyMap) shortHelp(quitNote string) []key.Binding {
	quit := "quit"
	if quitNote != "" {
		quit += " (" + quitNote + ")"
	}
	return []key.Binding{
		helpLine("tab", "pane", k.Next, k.Prev),
		helpLine("↑↓", "scroll", k.Up, k.Down),
		helpLine("/", "filter", k.Filter),
		helpLine("s", "sort", k.Sort),
		helpLine("?", "help", k.Help),
		helpLine("q", quit, k.Quit, k.Interrupt),
	}
}

// editHelp is the footer while a filter is typed: q is text then, so only
// ctrl-c quits.
func (k keyMap) editHelp() []key.Binding {
	return []key.Binding{
		// Typing has no binding of its own: it goes on with what Filter
		// started.
		helpLine("type", "to filter", k.Filter),
		helpLine("enter", "apply", k.Apply),
		helpLine("esc", "clear", k.Cancel),
		helpLine("ctrl-c", "quit", k.Interrupt),
	}
}

// fullHelp is the help screen: one column of every key.
func (k keyMap) fullHelp() [][]key.Binding {
	return [][]key.Binding{{
		helpLine("tab, →, l", "next pane", k.Next),
		helpLine("shift-tab, ←, h", "previous pane", k.Prev),
		helpLine("↑ ↓ (k j)", "scroll the focused pane", k.Up, k.Down),
		helpLine("pgup pgdn", "scroll a page", k.PageUp, k.PageDown),
		helpLine("home end (g G)", "first / last rows", k.Top, k.Bottom),
		helpLine("/", "filter the focused pane: type, enter to apply, esc to clear", k.Filter),
		helpLine("s", "sort the focused pane by the next column", k.Sort),
		helpLine("?", "this help (esc or ? closes it)", k.Help),
		helpLine("q, ctrl-c", "quit", k.Quit, k.Interrupt),
	}}
}

// newHelp returns the help view of both dashboards, styled like the rest
// of the screen: a dim footer, a plain help screen indented as a list.
// help.New's own styles use adaptive colours, which ask the terminal for
// its background; ours are fixed.
func newHelp() help.Model {
	h := help.New()
	h.ShortSeparator = " · "
	h.Styles = help.Styles{
		Ellipsis:       dimStyle,
		ShortKey:       dimStyle,
		ShortDesc:      dimStyle,
		ShortSeparator: dimStyle,
		// The key column starts 2 cells in and its descriptions 4 cells
		// after the widest key (help.Model adds one space).
		FullKey:  lipgloss.NewStyle().PaddingLeft(2),
		FullDesc: lipgloss.NewStyle().PaddingLeft(3),
	}
	return h
}
