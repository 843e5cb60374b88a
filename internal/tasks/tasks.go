// Package tasks runs a daemon's long-running parts together: each until
// the shared context ends, all of them stopped and waited for as soon as
// one fails.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// Task is one named long-running part; it returns when ctx ends.
type Task struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run starts every task, then waits until ctx ends or a task fails (an
// error other than context.Canceled). Either way it cancels the others,
// waits for all of them and returns the first failure, named. started, if
// not nil, is called once every task has been started.
func Run(ctx context.Context, list []Task, started func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(list))
	var wg sync.WaitGroup
	for _, t := range list {
		wg.Add(1)
		go func() { // owned by Run: stops when ctx is cancelled, Run waits for it
			defer wg.Done()
			if err := t.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", t.Name, err)
			}
		}()
	}
	if started != nil {
		started()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	cancel()
	wg.Wait()
	return first
}

// Serve is a task serving srv on ln until ctx ends.
func Serve(srv *http.Server, ln net.Listener) func(context.Context) error {
	return func(ctx context.Context) error {
		stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
		defer stop()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
