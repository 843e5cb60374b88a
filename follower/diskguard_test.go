package follower

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pinfold/pinfold/store"
)

func TestDecideDisk(t *testing.T) {
	const (
		mib = int64(1) << 20
		r   = 200 * mib // reserve
		h   = 64 * mib  // headroom
	)
	p := diskPolicy{Reserve: r, Headroom: h}
	cases := []struct {
		name   string
		s      diskState
		paused bool
		want   diskDecision
	}{
		{"plenty of room", diskState{Free: 10 << 30, Reserve: r}, false, diskDecision{}},
		{"exactly the headroom left", diskState{Free: h, Reserve: r}, false, diskDecision{}},
		{"one byte under the headroom: pause and release the reserve", diskState{Free: h - 1, Reserve: r}, false,
			diskDecision{Pause: true, Release: true, ResumeAt: r + 2*h}},
		{"holes count against the free space", diskState{Free: h + 10*mib, Holes: 11 * mib, Reserve: r}, false,
			diskDecision{Pause: true, Release: true, ResumeAt: 11*mib + r + 2*h}},
		{"disk full", diskState{Free: 0, Reserve: r}, false,
			diskDecision{Pause: true, Release: true, ResumeAt: r + 2*h}},
		{"no reserve at start, room for it", diskState{Free: r + h}, false, diskDecision{Restore: true}},
		{"no reserve at start, no room for it", diskState{Free: r + h - 1}, false,
			diskDecision{Pause: true, ResumeAt: r + 2*h}},
		{"part of the reserve missing", diskState{Free: 50*mib + h, Reserve: r - 50*mib}, false, diskDecision{Restore: true}},
		{"paused, reserve released, still short", diskState{Free: r + 2*h - 1}, true,
			diskDecision{Pause: true, ResumeAt: r + 2*h}},
		{"paused, room for the reserve and twice the headroom: resume", diskState{Free: r + 2*h}, true,
			diskDecision{Restore: true}},
		{"paused between the thresholds: stays paused (hysteresis)", diskState{Free: r + h + h/2}, true,
			diskDecision{Pause: true, ResumeAt: r + 2*h}},
		{"running at the same free space goes on", diskState{Free: r + h + h/2}, false, diskDecision{Restore: true}},
		{"paused, reserve held, free under the reserve: release it", diskState{Free: h / 2, Reserve: r}, true,
			diskDecision{Pause: true, Release: true, ResumeAt: r + 2*h}},
		{"paused, reserve held, free at the reserve: keep it", diskState{Free: r, Reserve: r}, true,
			diskDecision{}},
		{"paused, reserve held, free space taken by holes", diskState{Free: r, Holes: r, Reserve: r}, true,
			diskDecision{Pause: true, Release: true, ResumeAt: r + r + 2*h}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := decideDisk(p, c.s, c.paused); got != c.want {
				t.Errorf("decideDisk(%+v, paused %v) = %+v, want %+v", c.s, c.paused, got, c.want)
			}
		})
	}
}

// TestDecideDiskNeverResumesIntoAPause: a decision to resume (or keep
// running) leaves at least the headroom after making the reserve whole, so
// the next check with the same disk does not pause again.
func TestDecideDiskNeverResumesIntoAPause(t *testing.T) {
	p := diskPolicy{Reserve: store.DiskReserve, Headroom: diskHeadroom}
	for free := int64(0); free < 2*store.DiskReserve; free += 1 << 20 {
		for _, holes := range []int64{0, 16 << 20, 128 << 20} {
			for _, held := range []int64{0, store.DiskReserve / 2, store.DiskReserve} {
				for _, paused := range []bool{false, true} {
					s := diskState{Free: free, Holes: holes, Reserve: held}
					d := decideDisk(p, s, paused)
					if d.Pause {
						if d.ResumeAt <= free {
							t.Fatalf("%+v paused %v: paused with resume at %d, already free", s, paused, d.ResumeAt)
						}
						continue
					}
					after := s
					if d.Restore {
						after.Free -= store.DiskReserve - held
						after.Reserve = store.DiskReserve
					}
					if again := decideDisk(p, after, false); again.Pause || again.Restore {
						t.Fatalf("%+v paused %v: %+v, then %+v on %+v", s, paused, d, again, after)
					}
				}
			}
		}
	}
}

// TestDiskWatchAllocatesNewLogs: a memtable WAL created in the datastore
// folder is allocated in full by the watch, its size left as badger
// created it; other files are left alone.
func TestDiskWatchAllocatesNewLogs(t *testing.T) {
	home := Home{Dir: t.TempDir()}
	if err := os.Mkdir(home.DatastorePath(), 0o700); err != nil {
		t.Fatal(err)
	}
	g := newDiskGuard(home, slog.New(slog.DiscardHandler), func(string, string) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.watch(ctx) }() // owned by the test: ends with cancel
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	allocated := func(name string) int64 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(home.DatastorePath(), name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Size != 0 {
			t.Fatalf("%s: size %d, want 0 (the watch must not change it)", name, st.Size)
		}
		return st.Blocks * 512
	}
	// The watch may start after the first file is created: create files
	// until one is allocated, within a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		name := fmt.Sprintf("%05d.mem", i)
		if err := os.WriteFile(filepath.Join(home.DatastorePath(), name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home.DatastorePath(), fmt.Sprintf("%06d.sst", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		ok := false
		for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if allocated(name) >= store.MappedLogSize(name) {
				ok = true
				break
			}
		}
		if ok {
			if n := allocated(fmt.Sprintf("%06d.sst", i)); n != 0 {
				t.Fatalf("a table got %d bytes allocated", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no memtable WAL allocated by the watch in 10 s (%d created)", i)
		}
	}
}

func TestInotifyNames(t *testing.T) {
	event := func(name string, pad int) []byte {
		b := make([]byte, unix.SizeofInotifyEvent+len(name)+pad)
		binary.NativeEndian.PutUint32(b[12:16], uint32(len(name)+pad))
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	var b []byte
	b = append(b, event("00001.mem", 7)...)
	b = append(b, event("", 0)...)
	b = append(b, event("000002.vlog", 5)...)
	got := inotifyNames(b)
	if want := []string{"00001.mem", "000002.vlog"}; !slices.Equal(got, want) {
		t.Fatalf("inotifyNames = %q, want %q", got, want)
	}
	if got := inotifyNames(b[:len(b)-3]); !slices.Equal(got, []string{"00001.mem"}) {
		t.Fatalf("a cut event: inotifyNames = %q, want the whole ones only", got)
	}
}

// TestDiskGuardOff: with disk_guard false the reserve a previous run left
// is deleted and the guard never pauses, even on a disk it reads as full.
func TestDiskGuardOff(t *testing.T) {
	home := Home{Dir: t.TempDir()}
	g := newDiskGuard(home, slog.New(slog.DiscardHandler), func(string, string) {})
	g.policy.Reserve = 1 << 62 // no disk has this much free: a guard on would pause
	if err := os.WriteFile(g.reserve, []byte("left by a run with the guard on"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.turnOff(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.reserve); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the reserve file is still there: %v", err)
	}
	if !g.check(1 << 40) {
		t.Fatal("a guard turned off paused fetching")
	}
	if info := g.info(); info.Paused != "" || info.Pauses != 0 {
		t.Fatalf("a guard turned off reports %+v", info)
	}
	g.off = false
	if g.check(0) {
		t.Fatal("the same guard on did not pause: the test shows nothing")
	}
}
