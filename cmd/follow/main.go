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
	// The cluster name comes first, before its command, as in
	// ipfs-cluster-follow. Flags before it (--root) belong to the top level.
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if args[i] == "--root" && i+1 < len(args) {
			i++
		}
		i++
	}
	// A cluster may share its name with a top-level command ("demo"): a
	// cluster command after it decides.
	if i < len(args) && (!isTopCommand(top, args[i]) || (i+1 < len(args) && isClusterCommand(g, args[i+1]))) {
		cl := newClusterCmd(g, args[i])
		pre := args[:i]
		rest := append(append([]string{}, pre...), args[i+1:]...)
		cl.SetArgs(rest)
		return cl.ExecuteContext(ctx)
	}
	top.SetArgs(args)
	return top.ExecuteContext(ctx)
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
	return name == "help" || name == "completion"
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
	top.AddCommand(newListCmd(g), newDemoCmd(g))
	return top
}

func newClusterCmd(g *globals, name string) *cobra.Command {
	c := baseCmd(g, "follow "+name, "Commands for cluster "+name)
	c.AddCommand(newInitCmd(g, name), newInfoCmd(g, name), newRunCmd(g, name), newStatusCmd(g, name), newStopCmd(g, name), newDashboardCmd(g, name))
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
