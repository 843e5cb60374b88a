package tui

// The panes are drawn by this table rather than bubbles/table (v0.21):
// the dashboards need a column that takes the width the others leave,
// right-aligned numbers, sorting by any column and filtering, and
// bubbles/table has none of these. It also moves a selected row where a
// pane here scrolls, and it cuts cells with runewidth.Truncate, which
// counts escape codes as text: cells that carry a colour (a fetch bar, a
// warning) would be cut short or lose their reset. Wrapping it would keep
// all of this file's work and add a translation layer, so only the
// filter prompt comes from bubbles (textinput).

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// column describes one table column. Flex columns share the width the
// others leave evenly, each up to its max (0: no limit).
type column struct {
	title string
	width int
	flex  bool
	max   int
	right bool
	sort  bool // s cycles through the sortable columns
}

// sortKey is the sort key of one cell: numbers compare before strings.
type sortKey struct {
	n float64
	s string
}

// row is one table row: its cells as shown and one sort key per column.
type row struct {
	cells []string
	keys  []sortKey
}

// table is a pane listing rows: it scrolls, filters and sorts them. It is
// a child model: the dashboard routes keys to the focused table.
type table struct {
	name    string
	cols    []column
	rows    []row
	sortCol int             // index into cols
	input   textinput.Model // the filter; focused while it is typed
	offset  int             // first visible row
	empty   string
}

func newTable(name string, cols []column, sortCol int) *table {
	in := textinput.New()
	in.Prompt = "filter: "
	in.PromptStyle = dimStyle
	// A blinking cursor needs its tick messages routed back to the input
	// through the dashboard; a steady one shows as well where to type.
	in.Cursor.SetMode(cursor.CursorStatic)
	// ctrl-v would read the clipboard by running a helper program (xclip,
	// pbpaste…); the terminal's own paste still types the text.
	in.KeyMap.Paste.SetEnabled(false)
	return &table{name: name, cols: cols, sortCol: sortCol, input: in}
}

// filter is the text rows must contain, applied while it is typed.
func (t *table) filter() string { return t.input.Value() }

// editing reports whether the filter is being typed.
func (t *table) editing() bool { return t.input.Focused() }

// visible returns the rows that pass the filter, sorted.
func (t *table) visible() []row {
	var out []row
	f := strings.ToLower(t.filter())
	for _, r := range t.rows {
		if f == "" || strings.Contains(strings.ToLower(ansi.Strip(strings.Join(r.cells, " "))), f) {
			out = append(out, r)
		}
	}
	c := t.sortCol
	slices.SortStableFunc(out, func(a, b row) int {
		if c >= len(a.keys) || c >= len(b.keys) {
			return 0
		}
		if n := cmp.Compare(a.keys[c].n, b.keys[c].n); n != 0 {
			return n
		}
		return cmp.Compare(a.keys[c].s, b.keys[c].s)
	})
	return out
}

// cycleSort moves the sort to the next sortable column.
func (t *table) cycleSort() {
	for i := 1; i <= len(t.cols); i++ {
		c := (t.sortCol + i) % len(t.cols)
		if t.cols[c].sort {
			t.sortCol = c
			t.offset = 0
			return
		}
	}
}

// scroll moves the first visible row by delta, within bounds for a pane
// showing page rows.
func (t *table) scroll(delta, page int) {
	n := len(t.visible())
	t.offset = min(max(t.offset+delta, 0), max(n-page, 0))
}

// editKey handles a key while the filter is typed: enter keeps it, esc
// clears it, and the text input takes the rest (runes, backspace, cursor
// moves). Control characters typed or pasted are dropped by the input.
func (t *table) editKey(msg tea.KeyMsg) tea.Cmd {
	t.offset = 0
	switch {
	case key.Matches(msg, keymap.Apply):
		t.input.Blur()
	case key.Matches(msg, keymap.Cancel):
		t.input.Blur()
		t.input.Reset()
	default:
		var cmd tea.Cmd
		t.input, cmd = t.input.Update(msg)
		return cmd
	}
	return nil
}

// widths computes the column widths for a total width.
func (t *table) widths(width int) []int {
	ws := make([]int, len(t.cols))
	used := len(t.cols) - 1 // one space between columns
	var flex []int
	for i, c := range t.cols {
		ws[i] = c.width
		used += c.width
		if c.flex {
			flex = append(flex, i)
		}
	}
	// One cell at a time to each flex column that may still grow: the
	// width left over is a few hundred cells at most.
	for extra := width - used; extra > 0; {
		grew := false
		for _, i := range flex {
			if extra > 0 && (t.cols[i].max == 0 || ws[i] < t.cols[i].max) {
				ws[i]++
				extra--
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	return ws
}

// view renders the pane in exactly height lines of at most width cells: a
// title, the column titles and as many rows as fit.
func (t *table) view(width, height int, focused bool) []string {
	if height <= 0 {
		return nil
	}
	rows := t.visible()
	page := max(height-2, 0)
	off := min(t.offset, max(len(rows)-page, 0))
	title := t.name
	if focused {
		title = "▸ " + title
	} else {
		title = "  " + title
	}
	info := fmt.Sprintf(" %d", len(rows))
	if len(rows) != len(t.rows) {
		info = fmt.Sprintf(" %d of %d", len(rows), len(t.rows))
	}
	if len(rows) > page && page > 0 {
		info += fmt.Sprintf(" · %d-%d", off+1, min(off+page, len(rows)))
	}
	info += " · sort " + strings.ToLower(t.cols[t.sortCol].title)
	var input string
	switch {
	case t.editing():
		info += " · "
		input = t.input.View()
	case t.filter() != "":
		info += " · filter " + fmt.Sprintf("%q", t.filter())
	}
	style := titleStyle
	if focused {
		style = focusStyle
	}
	lines := []string{style.Render(cell(title, ansi.StringWidth(title), false)) + dimStyle.Render(info) + input}
	ws := t.widths(width)
	var hdr []string
	for i, c := range t.cols {
		hdr = append(hdr, cell(c.title, ws[i], c.right))
	}
	if height > 1 {
		lines = append(lines, headStyle.Render(strings.Join(hdr, " ")))
	}
	if len(rows) == 0 && page > 0 {
		msg := t.empty
		if len(t.rows) > 0 {
			msg = "no rows match the filter"
		}
		lines = append(lines, dimStyle.Render("  "+msg))
	}
	for _, r := range rows[off:min(off+page, len(rows))] {
		var cs []string
		for i, c := range t.cols {
			v := ""
			if i < len(r.cells) {
				v = r.cells[i]
			}
			cs = append(cs, cell(v, ws[i], c.right))
		}
		lines = append(lines, strings.Join(cs, " "))
	}
	return padLines(lines, width, height)
}

// handleKey handles the keys shared by both dashboards on the focused
// table: scrolling, filtering and sorting. page is the rows the pane
// shows.
func (t *table) handleKey(msg tea.KeyMsg, page int) tea.Cmd {
	switch {
	case key.Matches(msg, keymap.Up):
		t.scroll(-1, page)
	case key.Matches(msg, keymap.Down):
		t.scroll(1, page)
	case key.Matches(msg, keymap.PageUp):
		t.scroll(-max(page, 1), page)
	case key.Matches(msg, keymap.PageDown):
		t.scroll(max(page, 1), page)
	case key.Matches(msg, keymap.Top):
		t.offset = 0
	case key.Matches(msg, keymap.Bottom):
		t.scroll(len(t.rows), page)
	case key.Matches(msg, keymap.Filter):
		t.offset = 0
		return t.input.Focus()
	case key.Matches(msg, keymap.Cancel):
		t.input.Reset()
		t.offset = 0
	case key.Matches(msg, keymap.Sort):
		t.cycleSort()
	}
	return nil
}
