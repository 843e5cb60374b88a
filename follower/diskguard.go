package follower

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"golang.org/x/sys/unix"

	"github.com/pinfold/pinfold/store"
)

// A disk that fills while the follower writes must not crash it: badger
// writes through sparse memory maps, and a page the file system cannot
// allocate kills the process with SIGBUS (see store/disk.go). The disk
// guard
//
//   - keeps badger's mapped logs fully allocated (as soon as inotify shows
//     a new one, and at every check), so a page badger has never faults;
//   - keeps a reserve file (disk-reserve in the data folder) of
//     store.DiskReserve bytes, allocated, and gives its space back to
//     badger only once fetching has stopped for a full disk, so badger
//     can finish what it was writing (flushes, compactions, a new log);
//   - checks the free space every diskCheckInterval, before each pin it
//     fetches and before each block of the value log's size it stores,
//     stops fetching when less than diskHeadroom is left beyond what the
//     mapped logs still need, and resumes once the reserve fits again
//     with twice that headroom.
const (
	diskCheckInterval = 100 * time.Millisecond
	reserveFile       = "disk-reserve"
)

// diskState is what a check reads.
type diskState struct {
	Free    int64 // bytes free to the follower on the data disk
	Holes   int64 // bytes badger's mapped logs may write that are not allocated yet
	Reserve int64 // bytes the reserve file holds
}

// diskPolicy is what the guard keeps.
type diskPolicy struct {
	Reserve  int64 // the reserve file's size
	Headroom int64 // free space fetching leaves beyond the reserve and the holes
}

// diskDecision is what a check does.
type diskDecision struct {
	Pause    bool  // fetching stops (or stays stopped)
	Release  bool  // the reserve file gives its space to badger
	Restore  bool  // the reserve file is filled back to its size
	ResumeAt int64 // free bytes at which fetching resumes, when paused
}

// decideDisk is the guard's decision from what a check read and whether
// fetching is paused. Fetching pauses when less than the headroom is free
// beyond what the mapped logs still need, or when the reserve cannot be
// made whole with the headroom left; once paused, the reserve is released
// while less than its size is free. Fetching resumes when the reserve can
// be made whole with twice the headroom to spare.
func decideDisk(p diskPolicy, s diskState, paused bool) diskDecision {
	avail := s.Free - s.Holes
	missing := max(p.Reserve-s.Reserve, 0)
	if !paused && avail-missing >= p.Headroom {
		return diskDecision{Restore: missing > 0}
	}
	if avail-missing >= 2*p.Headroom {
		return diskDecision{Restore: missing > 0} // resume
	}
	d := diskDecision{Pause: true, Release: s.Reserve > 0 && avail < p.Reserve}
	if d.Release {
		missing = p.Reserve
	}
	d.ResumeAt = s.Holes + missing + 2*p.Headroom
	return d
}

// errDiskPaused: the guard refused a write while fetching is paused.
var errDiskPaused = errors.New("fetching paused for disk space")

// diskGuard runs the checks and holds what they decided.
type diskGuard struct {
	dir     string // the datastore folder
	reserve string // the reserve file
	where   string // the data folder, for messages
	policy  diskPolicy
	log     *slog.Logger
	event   func(kind, text string)

	mu         sync.Mutex
	paused     bool
	msg        string
	state      diskState
	resumed    chan struct{}      // closed when fetching resumes
	cancel     context.CancelFunc // the running fetch's
	pauses     int64
	noAllocate bool // the file system has no fallocate
	off        bool // config disk_guard false: every method does nothing
}

func newDiskGuard(home Home, log *slog.Logger, event func(kind, text string)) *diskGuard {
	return &diskGuard{
		dir: home.DatastorePath(), reserve: filepath.Join(home.Dir, reserveFile), where: home.Dir,
		policy: diskPolicy{Reserve: store.DiskReserve, Headroom: diskHeadroom},
		log:    log, event: event, resumed: make(chan struct{}),
	}
}

// turnOff makes every method of g do nothing, and deletes the reserve
// file a run with the guard on left.
func (g *diskGuard) turnOff() error {
	g.off = true
	if err := os.Remove(g.reserve); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disk guard off: %w", err)
	}
	return nil
}

// run checks every diskCheckInterval until ctx ends.
func (g *diskGuard) run(ctx context.Context) error {
	if g.off {
		return nil
	}
	t := time.NewTicker(diskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		g.allocateLogs()
		g.check(0)
	}
}

// watch allocates each mapped log badger creates as soon as it appears
// (inotify), instead of at the next check, until ctx ends. Without
// inotify it logs why and leaves the allocation to the checks.
func (g *diskGuard) watch(ctx context.Context) error {
	if g.off {
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		g.log.Warn("disk guard: no inotify; new logs are allocated at the next check", "err", err)
		return nil
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, g.dir, unix.IN_CREATE); err != nil {
		g.log.Warn("disk guard: watch the datastore; new logs are allocated at the next check", "dir", g.dir, "err", err)
		return nil
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			g.log.Warn("disk guard: read inotify events; new logs are allocated at the next check", "err", err)
			return nil
		}
		for _, name := range inotifyNames(buf[:n]) {
			if size := store.MappedLogSize(name); size > 0 {
				g.preallocate(filepath.Join(g.dir, name), size)
			}
		}
	}
}

// inotifyNames returns the file names of the inotify events in b.
func inotifyNames(b []byte) []string {
	var names []string
	for len(b) >= unix.SizeofInotifyEvent {
		nameLen := int(binary.NativeEndian.Uint32(b[12:16])) // struct inotify_event: wd, mask, cookie, len, name
		end := unix.SizeofInotifyEvent + nameLen
		if end > len(b) {
			break
		}
		if name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00")); name != "" {
			names = append(names, name)
		}
		b = b[end:]
	}
	return names
}

// preallocate allocates size bytes for path, which badger has just
// created, without changing its size: badger truncates a new file to its
// full size only if it is still empty.
func (g *diskGuard) preallocate(path string, size int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size) // what fails is counted at the next check
}

// allocateLogs allocates every mapped log of the datastore in full and
// records the bytes that could not be.
func (g *diskGuard) allocateLogs() {
	if g.off {
		return
	}
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		g.log.Warn("disk guard: list the datastore", "err", err)
		return
	}
	var holes int64
	for _, e := range entries {
		if !store.MappedLog(e.Name()) {
			continue
		}
		holes += g.allocate(filepath.Join(g.dir, e.Name()))
	}
	g.mu.Lock()
	g.state.Holes = holes
	g.mu.Unlock()
}

// allocate allocates path's blocks up to its size and returns the bytes
// still unallocated.
func (g *diskGuard) allocate(path string) int64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0 // deleted meanwhile
	}
	hole := st.Size - st.Blocks*512
	if hole <= 0 || g.noAllocate {
		return 0
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, st.Size)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, unix.EOPNOTSUPP):
		g.mu.Lock()
		g.noAllocate = true
		g.mu.Unlock()
		g.log.Warn("disk guard: the data disk cannot preallocate files; a disk filled by another program may stop the follower", "dir", g.dir)
		return 0
	}
	return hole // ENOSPC: counted, so fetching pauses and the reserve is released
}

// check reads the disk for a write of n more bytes and applies the
// decision; it reports whether fetching may go on.
func (g *diskGuard) check(n int64) bool {
	if g.off {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var fs unix.Statfs_t
	if err := unix.Statfs(g.where, &fs); err != nil {
		return !g.paused
	}
	g.state.Free = int64(fs.Bavail) * fs.Bsize
	g.state.Reserve = g.reserveHeld()
	s := g.state
	s.Holes += n
	d := decideDisk(g.policy, s, g.paused)
	if d.Release {
		if err := os.Truncate(g.reserve, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			g.log.Warn("disk guard: release the reserve", "err", err)
		}
		g.state.Reserve = 0
	}
	if d.Restore {
		if err := g.restore(); err != nil {
			g.log.Warn("disk guard: restore the reserve", "err", err)
			d = diskDecision{Pause: true, ResumeAt: s.Holes + g.policy.Reserve + 2*g.policy.Headroom}
		}
	}
	if !d.Pause {
		if g.paused {
			g.paused, g.msg = false, ""
			close(g.resumed)
			g.event("disk", fmt.Sprintf("disk space back: %s free on %s, fetching resumes", humanize.IBytes(uint64(g.state.Free)), g.where))
		}
		return true
	}
	g.msg = fmt.Sprintf("paused: disk full: %s free on %s, fetching resumes when %s is free",
		humanize.IBytes(uint64(max(g.state.Free, 0))), g.where, humanize.IBytes(uint64(max(d.ResumeAt, 0))))
	if !g.paused {
		g.paused = true
		g.pauses++
		g.resumed = make(chan struct{})
		if g.cancel != nil {
			g.cancel()
		}
		g.event("disk", g.msg)
	}
	return false
}

// reserveHeld returns the bytes allocated to the reserve file.
func (g *diskGuard) reserveHeld() int64 {
	var st unix.Stat_t
	if err := unix.Stat(g.reserve, &st); err != nil {
		return 0
	}
	return min(st.Size, st.Blocks*512)
}

// restore allocates the reserve file in full (by writing zeros where the
// file system cannot preallocate).
func (g *diskGuard) restore() error {
	f, err := os.OpenFile(g.reserve, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	size := g.policy.Reserve
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		if _, err = f.Seek(0, io.SeekStart); err == nil {
			_, err = io.CopyN(f, zeros{}, size)
		}
		if err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		_ = f.Truncate(0)
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%s of %s: %w", reserveFile, humanize.IBytes(uint64(size)), err)
		}
		return fmt.Errorf("allocate %s: %w", g.reserve, err)
	}
	g.state.Reserve = size
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// fetching returns a context for a fetch that ends when fetching pauses,
// and done to call when the fetch returns; ok is false while paused.
func (g *diskGuard) fetching(ctx context.Context) (fctx context.Context, done func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		return nil, nil, false
	}
	fctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	return fctx, func() {
		g.mu.Lock()
		g.cancel = nil
		g.mu.Unlock()
		cancel()
	}, true
}

// pausedFor returns the pause message and a channel closed on resume; the
// message is empty when fetching runs.
func (g *diskGuard) pausedFor() (string, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused {
		return "", nil
	}
	return g.msg, g.resumed
}

// diskInfo is the guard's part of the status.
type diskInfo struct {
	Paused  string
	Reserve int64
	Pauses  int64
}

func (g *diskGuard) info() diskInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return diskInfo{Paused: g.msg, Reserve: g.state.Reserve, Pauses: g.pauses}
}

// guardedBlocks is the block store bitswap writes fetched blocks to: a
// block of the value log's size (or larger) is refused while fetching is
// paused for disk space, and checked against the free space first.
// Smaller blocks (head and CRDT nodes, small content) go to badger's
// memtable WAL, which is allocated: they are always stored.
type guardedBlocks struct {
	blockstore.Blockstore
	g *diskGuard
}

func (b guardedBlocks) admit(n int64) error {
	if b.g.check(n) || n < store.LargeValue {
		return nil
	}
	return errDiskPaused
}

func (b guardedBlocks) Put(ctx context.Context, blk blocks.Block) error {
	if err := b.admit(int64(len(blk.RawData()))); err != nil {
		return fmt.Errorf("put %s: %w", blk.Cid(), err)
	}
	return b.Blockstore.Put(ctx, blk)
}

func (b guardedBlocks) PutMany(ctx context.Context, blks []blocks.Block) error {
	var n, largest int64
	for _, blk := range blks {
		n += int64(len(blk.RawData()))
		largest = max(largest, int64(len(blk.RawData())))
	}
	if !b.g.check(n) && largest >= store.LargeValue {
		return fmt.Errorf("put %d blocks: %w", len(blks), errDiskPaused)
	}
	return b.Blockstore.PutMany(ctx, blks)
}
