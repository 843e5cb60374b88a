package runlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrHeld is wrapped by Acquire's error when another process holds the lock.
var ErrHeld = errors.New("runlock: already running")

// Info is what the lock file says about its holder.
type Info struct {
	PID   int       `json:"pid"`
	Phase string    `json:"phase"`
	Since time.Time `json:"since"` // when the phase began
	// Clean is true once the holder stopped cleanly (written by Release).
	Clean bool `json:"clean,omitempty"`
}

// HeldError is the error of Acquire on a lock another process holds.
type HeldError struct{ Info Info }

func (e *HeldError) Error() string {
	if e.Info.PID > 0 {
		return fmt.Sprintf("%v (pid %d)", ErrHeld, e.Info.PID)
	}
	return ErrHeld.Error()
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held lock. Its methods are safe for concurrent use.
type Lock struct {
	mu   sync.Mutex
	f    *os.File
	info Info
	// Unclean reports that the previous holder did not release the lock
	// (it crashed or was killed) after getting past its first phase.
	Unclean bool
}

// Acquire takes the lock at path for this process, in phase, or returns a
// *HeldError naming the holder. now dates the phase.
func Acquire(path, phase string, now time.Time) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		prev, _ := decode(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Info: prev}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	prev, err := decode(f)
	l := &Lock{f: f, Unclean: err == nil && !prev.Clean && prev.PID != 0}
	if err := l.SetPhase(phase, now); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// SetPhase records what the holder is doing now.
func (l *Lock) SetPhase(phase string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	l.info = Info{PID: os.Getpid(), Phase: phase, Since: now.UTC()}
	return l.writeLocked()
}

func (l *Lock) writeLocked() error {
	b, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Name(), err)
	}
	if _, err := l.f.WriteAt(append(b, '\n'), 0); err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Name(), err)
	}
	return nil
}

// Release marks a clean stop and lets the lock go. It is idempotent.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	l.info.Clean, l.info.Phase = true, "stopped"
	err := l.writeLocked()
	err = errors.Join(err, l.f.Close()) // closing the descriptor drops the flock
	l.f = nil
	return err
}

// Read returns what the lock file at path says and whether a live
// process holds it. A missing file is not running, with no error.
func Read(path string) (Info, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, err
	}
	defer f.Close()
	info, _ := decode(f)
	// A shared lock is refused while a holder has the exclusive one.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return info, true, nil
		}
		return info, false, err
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return info, false, nil
}

// WaitReleased waits until no process holds the lock at path, polling
// every interval, until ctx ends. It reports whether it was released.
func WaitReleased(ctx context.Context, path string, interval time.Duration) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, held, err := Read(path); err == nil && !held {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func decode(f *os.File) (Info, error) {
	var info Info
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err != nil {
		return info, err
	}
	if len(b) == 0 {
		return info, io.EOF
	}
	return info, json.Unmarshal(b, &info)
}
