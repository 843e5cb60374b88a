package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var b bytes.Buffer
	n := 0
	print := func(ctx context.Context, w io.Writer) error {
		n++
		switch n {
		case 2:
			return errors.New("connection refused")
		case 3:
			cancel()
		}
		fmt.Fprintf(w, "print %d\n", n)
		return nil
	}
	if err := Watch(ctx, &b, "follower", time.Millisecond, print); err != nil {
		t.Fatal(err)
	}
	want := "print 1\n\nfollower unreachable: connection refused — retrying in 1ms\n\nprint 3\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}

	// Once: the error is returned.
	err := Watch(context.Background(), io.Discard, "follower", 0, func(context.Context, io.Writer) error { return errors.New("down") })
	if err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("once: %v", err)
	}
}
