package tui

import (
	"context"
	"errors"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"
)

// RunFollower runs the follower dashboard on the terminal (alternate
// screen) until the user quits or ctx ends; both return nil. It never
// stops or changes the follower.
func RunFollower(ctx context.Context, src FollowerSource, opt RunOptions) error {
	return runProgram(ctx, NewFollowerModel(src, opt.Options), opt)
}

// RunCurator runs the curator dashboard like RunFollower.
func RunCurator(ctx context.Context, src CuratorSource, opt RunOptions) error {
	return runProgram(ctx, NewCuratorModel(src, opt.Options), opt)
}

func runProgram(ctx context.Context, m tea.Model, opt RunOptions) error {
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen()}
	if opt.In != nil {
		opts = append(opts, tea.WithInput(opt.In))
	}
	if opt.Out != nil {
		opts = append(opts, tea.WithOutput(opt.Out))
	}
	_, err := tea.NewProgram(m, opts...).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}
