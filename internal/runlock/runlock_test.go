package runlock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAcquireHeldRelease(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "run.lock")
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, held, err := Read(path); err != nil || held {
		t.Fatalf("no file: held %v, err %v", held, err)
	}
	l, err := Acquire(path, "opening", now)
	if err != nil {
		t.Fatal(err)
	}
	if l.Unclean {
		t.Fatal("a first run is not unclean")
	}
	var he *HeldError
	if _, err := Acquire(path, "opening", now); !errors.As(err, &he) || !errors.Is(err, ErrHeld) || he.Info.PID != os.Getpid() {
		t.Fatalf("second acquire: %v", err)
	}
	if err := l.SetPhase("running", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	info, held, err := Read(path)
	if err != nil || !held || info.Phase != "running" || info.PID != os.Getpid() || !info.Since.Equal(now.Add(time.Second)) {
		t.Fatalf("read while held: %+v held %v err %v", info, held, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	info, held, err = Read(path)
	if err != nil || held || !info.Clean {
		t.Fatalf("read after release: %+v held %v err %v", info, held, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if !WaitReleased(ctx, path, time.Millisecond) {
		t.Fatal("WaitReleased: still held")
	}
	l2, err := Acquire(path, "opening", now)
	if err != nil || l2.Unclean {
		t.Fatalf("acquire after a clean release: unclean %v, err %v", l2 != nil && l2.Unclean, err)
	}
	l2.Release()
}

// A holder that never released (killed) leaves a file its successor
// reads as an unclean stop; the flock itself went with the process.
func TestUncleanPredecessor(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "run.lock")
	if err := os.WriteFile(path, []byte(`{"pid":12345,"phase":"running","since":"2025-01-01T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, held, _ := Read(path); held {
		t.Fatal("nobody holds a lock file of a dead process")
	}
	l, err := Acquire(path, "opening", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if !l.Unclean {
		t.Fatal("predecessor that never released: want Unclean")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if WaitReleased(ctx, path, time.Millisecond) {
		t.Fatal("WaitReleased while held: want false at the deadline")
	}
}
