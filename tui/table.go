package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// column describes one table column. One column may be flex: it takes the
// width the others leave.
type column struct {
	title string
	width int
	flex  bool
	right bool
	sort  bool // s cycles through the sortable columns
}

// key is the sort key of one cell: numbers compare before strings.
type key struct {
	n float64
	s string
}

// row is one table row: its cells as shown and one sort key per column.
type row struct {
	cells []string
	keys  []key
}

// table is a pane listing rows: it scrolls, filters and sorts them. It is
// a child model: the dashboard routes keys to the focused table.
type table struct {
	name    string
	cols    []column
	rows    []row
	sortCol int // index into cols
	filter  string
	editing bool // the filter is being typed
	offset  int  // first visible row
	empty   string
}

func newTable(name string, cols []column, sortCol int) *table {
	return &table{name: name, cols: cols, sortCol: sortCol}
}

// visible returns the rows that pass the filter, sorted.
func (t *table) visible() []row {
	var out []row
	f := strings.ToLower(t.filter)
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

// editKey handles a key while the filter is typed: runes extend it,
// backspace shortens it, enter applies it, esc clears it.
func (t *table) editKey(msg tea.KeyMsg) {
	switch msg.Type {
	case tea.KeyEnter:
		t.editing = false
	case tea.KeyEsc:
		t.editing = false
		t.filter = ""
	case tea.KeyBackspace:
		if r := []rune(t.filter); len(r) > 0 {
			t.filter = string(r[:len(r)-1])
		}
	case tea.KeySpace:
		t.filter += " "
	case tea.KeyRunes:
		t.filter += clean(string(msg.Runes))
	}
	t.offset = 0
}

// widths computes the column widths for a total width.
func (t *table) widths(width int) []int {
	ws := make([]int, len(t.cols))
	used := len(t.cols) - 1 // one space between columns
	flex := -1
	for i, c := range t.cols {
		ws[i] = c.width
		used += c.width
		if c.flex {
			flex = i
		}
	}
	if flex >= 0 && used < width {
		ws[flex] += width - used
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
	switch {
	case t.editing:
		info += " · filter: " + t.filter + "▏"
	case t.filter != "":
		info += " · filter " + fmt.Sprintf("%q", t.filter)
	}
	style := titleStyle
	if focused {
		style = focusStyle
	}
	lines := []string{style.Render(cell(title, ansi.StringWidth(title), false)) + dimStyle.Render(info)}
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

// tableKey handles the keys shared by both dashboards on the focused table:
// scrolling, filtering and sorting. page is the rows the pane shows. It
// reports whether the key was one of them.
func tableKey(t *table, msg tea.KeyMsg, page int) bool {
	switch msg.String() {
	case "up", "k":
		t.scroll(-1, page)
	case "down", "j":
		t.scroll(1, page)
	case "pgup":
		t.scroll(-max(page, 1), page)
	case "pgdown":
		t.scroll(max(page, 1), page)
	case "home", "g":
		t.offset = 0
	case "end", "G":
		t.scroll(len(t.rows), page)
	case "/":
		t.editing = true
	case "s":
		t.cycleSort()
	default:
		return false
	}
	return true
}
