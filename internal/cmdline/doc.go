// Package cmdline holds what the command lines of both programs (curate,
// follow) share beyond cobra itself: the build they report for --version,
// and strict command groups, where an unknown subcommand is a usage error
// (exit status 2) instead of a help page with exit status 0.
package cmdline
