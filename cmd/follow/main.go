// Command follow is the volunteer's program: join a pinfold cluster with
// one name and one command, donate disk, and mirror a share of its archive.
//
//	follow <cluster> init <cluster-config>
//	follow <cluster> run
//	follow <cluster> status|info|stop
//	follow list
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/internal/cmdline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "follow:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

type globals struct {
	root   string // folder holding one data folder per cluster
	stdout io.Writer
	stderr io.Writer
}

func (g *globals) followRoot() follower.Root { return follower.Root{Dir: g.root} }

// run dispatches 'follow <cluster> <command>' to the per-cluster command
// tree and everything else to the top-level one.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := &globals{root: follower.DefaultRoot().Dir, stdout: stdout, stderr: stderr}
	top := newTopCmd(g)
	// Shell completion asks "__complete <words…>": the words decide which
	// tree completes them, as they would decide which tree runs them.
	var complete []string
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		complete, args = args[:1], args[1:]
	}
	// The cluster name comes first, before its command, as in
	// ipfs-cluster-follow. Flags before it (--root) belong to the top level.
	i := clusterArg(args)
	// A cluster may share its name with a top-level command ("demo"): a
	// cluster command after it decides. While completing, the last word
	// is still being typed: it names nothing yet.
	last := len(args)
	if complete != nil {
		last--
	}
	if i < last && (!isTopCommand(top, args[i]) || (i+1 < last && isClusterCommand(g, args[i+1]))) {
		if complete == nil && i == len(args)-1 && !isTopCommand(top, args[i]) {
			if err := g.checkCluster(args[:i], args[i]); err != nil {
				return err
			}
		}
		cl := newClusterCmd(g, args[i])
		rest := append(append(append([]string{}, complete...), args[:i]...), args[i+1:]...)
		cl.SetArgs(rest)
		return cl.ExecuteContext(ctx)
	}
	top.SetArgs(append(complete, args...))
	return top.ExecuteContext(ctx)
}

// clusterArg returns the index of the first word that is not a flag (or
// the value of --root).
func clusterArg(args []string) int {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if args[i] == "--root" && i+1 < len(args) {
			i++
		}
		i++
	}
	return i
}

// checkCluster refuses 'follow <word>' alone when word is neither a
// command nor a cluster followed under the root (pre holds the flags
// before it): a typo is a usage error, not a help page.
func (g *globals) checkCluster(pre []string, word string) error {
	root := g.root
	for j := 0; j+1 < len(pre); j++ {
		if pre[j] == "--root" {
			root = pre[j+1]
		}
	}
	if h, err := (follower.Root{Dir: root}).Home(word); err == nil && h.Initialised() {
		return nil
	}
	names, _ := follower.Root{Dir: root}.List()
	known := "none"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	return usageError{fmt.Errorf("unknown command or cluster %q (clusters followed under %s: %s; see 'follow --help')", word, root, known)}
}

func isClusterCommand(g *globals, name string) bool {
	for _, c := range newClusterCmd(g, "x").Commands() {
		if c.Name() == name {
			return true
		}
	}
	return false
}

func isTopCommand(top *cobra.Command, name string) bool {
	for _, c := range top.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return true
		}
	}
	return name == "help" || name == "completion" || name == cobra.ShellCompRequestCmd || name == cobra.ShellCompNoDescRequestCmd
}

func baseCmd(g *globals, use, short string) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, SilenceUsage: true, SilenceErrors: true}
	c.SetOut(g.stdout)
	c.SetErr(g.stderr)
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	c.PersistentFlags().StringVar(&g.root, "root", g.root, "folder holding one data folder per cluster (env PINFOLD_FOLLOW_HOME)")
	return c
}

func newTopCmd(g *globals) *cobra.Command {
	top := baseCmd(g, "follow", "Follow pinfold clusters: donate disk, mirror a share of an archive")
	top.Long = `Follow pinfold clusters: donate disk, mirror a share of an archive.

  follow <cluster> init <cluster-config>   join a cluster (config file or JSON text)
  follow <cluster> info                    show this follower's identity and settings
  follow list                              list every cluster followed
  follow demo                              run a local demo cluster`
	top.AddCommand(newListCmd(g), newDemoCmd(g), newVersionCmd(g))
	top.Version = cmdline.Version()
	top.SetVersionTemplate("follow {{.Version}}\n")
	// Completing the first word offers the clusters followed besides the
	// commands.
	top.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, _ := g.followRoot().List()
		var out []cobra.Completion
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, cobra.CompletionWithDesc(n, "cluster followed"))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	cmdline.Strict(top, func(err error) error { return usageError{err} })
	return top
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version and the commit this follow was built from",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(g.stdout, "follow %s\n", cmdline.Version())
			return nil
		},
	}
}

func newClusterCmd(g *globals, name string) *cobra.Command {
	c := baseCmd(g, "follow "+name, "Commands for cluster "+name)
	c.AddCommand(newInitCmd(g, name), newInfoCmd(g, name), newRunCmd(g, name), newStatusCmd(g, name), newStopCmd(g, name),
		newDashboardCmd(g, name), newPinsCmd(g, name))
	cmdline.Strict(c, func(err error) error { return usageError{err} })
	return c
}

// exactArgs is cobra.ExactArgs with a usage error (exit status 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d (see '%s --help')", cmd.Name(), n, len(args), cmd.CommandPath())}
		}
		return nil
	}
}
