// Command curate is the curator's program: keys, the cluster's signed heads,
// its IPNS record and config, and the allocation simulator.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/internal/cmdline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "curate:", err)
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

// run builds the command tree and executes it; it is main without the
// process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// globals are the flags every subcommand shares.
type globals struct {
	home   string
	stdout io.Writer
	stderr io.Writer
}

func defaultHome() string {
	if h := os.Getenv("PINFOLD_CURATE_HOME"); h != "" {
		return h
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return ".pinfold-curate"
	}
	return filepath.Join(dir, ".pinfold", "curate")
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "curate",
		Short:         "Curate a pinfold cluster: keys, signed heads, records, allocation",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "curator home folder (env PINFOLD_CURATE_HOME)")
	root.AddCommand(
		newInitCmd(g),
		newKeyCmd(g),
		newExportConfigCmd(g),
		newExportRecordCmd(g),
		newVerifyRecordCmd(g),
		newAllocCmd(g),
		newDaemonCmd(g),
		newStatusCmd(g),
		newPinCmd(g),
		newMembersCmd(g),
		newTrustCmd(g),
		newShardsCmd(g),
		newAddCmd(g),
		newJoinCmd(g),
		newDashboardCmd(g),
	)
	root.Version = cmdline.Version()
	root.SetVersionTemplate("curate {{.Version}}\n")
	cmdline.Strict(root, func(err error) error { return usageError{err} })
	return root
}
