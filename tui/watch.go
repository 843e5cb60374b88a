package tui

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Watch prints a plain dashboard with print at once and then every
// interval until ctx ends, which returns nil. A failed print writes the
// "<what> unreachable" line and the watch goes on. With interval <= 0 it
// prints once and returns print's error.
func Watch(ctx context.Context, w io.Writer, what string, interval time.Duration, print func(ctx context.Context, w io.Writer) error) error {
	if interval <= 0 {
		return print(ctx, w)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			fmt.Fprintln(w)
		}
		if err := print(ctx, w); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(w, "%s unreachable: %v — retrying in %s\n", what, err, interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
