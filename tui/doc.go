// Package tui draws the terminal dashboards of a follower and of a curator
// over their local control APIs, and prints the same information as plain
// text when there is no terminal.
//
// A dashboard is a bubbletea model fed by a source: a function that fetches
// one snapshot (follower.Status, or a CuratorSnapshot). The model polls the
// source with one fetch in flight at a time, never more often than
// Options.Interval; when the source fails it keeps the last snapshot, shows
// a banner and keeps polling. Update does no I/O: fetches run as tea.Cmds
// and arrive as messages, so tests drive the models by calling Update and
// comparing View with golden files.
//
// Quitting a dashboard (q or ctrl-c) only ends the dashboard: the daemon it
// watches is never told anything.
package tui
