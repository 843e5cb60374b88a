package cmdline

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version describes the running binary: the module version, and the VCS
// commit it was built from (with "+dirty" when the tree had changes), as
// runtime/debug.ReadBuildInfo reports them.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	return describe(bi)
}

func describe(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	out := fmt.Sprintf("%s %s", bi.Main.Path, v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		out += ", commit " + rev
		if at != "" {
			out += " (" + at + ")"
		}
	} else {
		out += ", commit unknown"
	}
	return out + ", " + bi.GoVersion
}

// Strict makes every command group under root (a command with
// subcommands and no action of its own) refuse an unknown subcommand:
// usage wraps the error, and the caller maps it to exit status 2. A group
// called alone prints its help.
func Strict(root *cobra.Command, usage func(error) error) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return nil
				}
				var names []string
				for _, s := range cmd.Commands() {
					if s.IsAvailableCommand() {
						names = append(names, s.Name())
					}
				}
				return usage(fmt.Errorf("unknown command %q for %q; its commands: %s (see '%s --help')",
					args[0], cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath()))
			}
			c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
