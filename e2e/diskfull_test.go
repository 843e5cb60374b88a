package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/store"
)

// mountSmallFS mounts a file system of size MiB at a new folder and
// unmounts it at cleanup: a tmpfs, or with PINFOLD_DISKFULL_FS=ext4 an
// ext4 image on a loop device. It skips the test when mounting is not
// allowed.
func mountSmallFS(t *testing.T, size int) string {
	t.Helper()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mount := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "pfdsk-"+filepath.Base(tmp), dir)
	if os.Getenv("PINFOLD_DISKFULL_FS") == "ext4" {
		img := filepath.Join(tmp, "small.img")
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, int64(size)<<20); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
			t.Skipf("cannot make an ext4 image: mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
		}
		mount = exec.Command("mount", "-o", "loop", img, dir)
	}
	out, err := mount.CombinedOutput()
	if err != nil && os.Getenv("PINFOLD_REQUIRE_MOUNT") == "1" { // CI: the test must run
		t.Fatalf("cannot mount a small file system: %s: %v: %s", strings.Join(mount.Args, " "), err, strings.TrimSpace(string(out)))
	}
	if err != nil {
		t.Skipf("cannot mount a small file system (needs root or CAP_SYS_ADMIN): %s: %v: %s", strings.Join(mount.Args, " "), err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// diskStatus is the part of a follower's status this test reads.
type diskStatus struct {
	DiskPaused  string     `json:"disk_paused"`
	DiskReserve int64      `json:"disk_reserve"`
	DiskPauses  int64      `json:"disk_pauses"`
	Shards      []shardRow `json:"shards"`
}

func followerDisk(root, name string) (diskStatus, error) {
	var s diskStatus
	out, err := tryRun("follow", "--root", root, name, "status", "--json")
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal([]byte(out), &s)
}

// alive fails the test if p has exited.
func alive(t *testing.T, p *proc) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("%s died: %v: %s; log:\n%s", p.name, err, crashLine(p.log), tail(p.log))
	default:
	}
}

// TestFollowerSurvivesFullDisk: the follower's data folder is on a small
// file system, which another process (dd) fills while the follower fetches
// its shards. The follower does not die, reports the pause in its status,
// resumes once the fill is deleted, and ends with every shard stored and
// ACKed, every block of every pin present and matching its CID.
func TestFollowerSurvivesFullDisk(t *testing.T) {
	t.Parallel()
	small := mountSmallFS(t, 1200)
	dir := t.TempDir()
	home := filepath.Join(dir, "curator")
	root := filepath.Join(small, "followers")
	archive := filepath.Join(dir, "archive")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 16 { // 16 pins of 16 MiB of random bytes
		f, err := os.Create(filepath.Join(archive, fmt.Sprintf("part-%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, 16<<20); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	run(t, "curate", "--home", home, "init", "demo", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", api,
		"--head-interval", "500ms", "--replication-min", "1", "--replication-max", "1", "--shard-size", "32MiB")
	start(t, filepath.Join(dir, "curator.log"), "curate", "--home", home, "daemon")
	waitFor(t, 30*time.Second, "the curator API", func() bool { _, err := curStatus(home); return err == nil })
	run(t, "curate", "--home", home, "add", archive, "--each")
	cfgPath := filepath.Join(dir, "cluster.json")
	run(t, "curate", "--home", home, "export-config", "--out", cfgPath)
	run(t, "follow", "--root", root, "f1", "init", cfgPath, "--storage", "600MiB", "--listen", "/ip4/127.0.0.1/tcp/0")
	f1 := start(t, filepath.Join(dir, "f1.log"), "follow", "--root", root, "f1", "run")
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("PINFOLD_DISKFULL_LOG") != "" {
			out, _ := tryRun("follow", "--root", root, "f1", "status", "--json")
			t.Logf("f1 status:\n%s\nf1 log:\n%s", out, tail(f1.log))
		}
	})

	// Fill the file system once f1 has started fetching.
	var fetchedAtFill int64
	waitForFast(t, 60*time.Second, "f1 to start fetching", func() bool {
		rows, err := followerShardsAPI(root, "f1")
		if err != nil {
			return false
		}
		fetchedAtFill = 0
		for _, r := range rows {
			fetchedAtFill += r.Fetched
		}
		return fetchedAtFill > 0
	})
	fill := filepath.Join(small, "fill")
	dd := exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=1M")
	out, err := dd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left") {
		t.Fatalf("dd should stop at a full disk: %v: %s", err, out)
	}
	t.Logf("f1 had fetched %d bytes when dd started to fill the disk: %s", fetchedAtFill, strings.TrimSpace(lastLine(string(out))))

	var paused diskStatus
	waitFor(t, 20*time.Second, "f1 to report the pause for disk space", func() bool {
		alive(t, f1)
		s, err := followerDisk(root, "f1")
		paused = s
		return err == nil && strings.HasPrefix(s.DiskPaused, "paused: disk full") && s.DiskPauses > 0
	})
	var fetchedAtPause, total int64
	for _, r := range paused.Shards {
		fetchedAtPause += r.Fetched
		total += r.Bytes
	}
	if fetchedAtPause >= total {
		t.Fatalf("f1 had fetched all %d bytes when it paused: the disk did not fill mid-fetch", total)
	}
	t.Logf("f1 status, %d bytes fetched: %s", fetchedAtPause, paused.DiskPaused)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 45*time.Second, "every shard stored by f1 and ACKed", func() bool {
		alive(t, f1)
		sh, err := tryRun("curate", "--home", home, "shards", "ls", "--json")
		if err != nil {
			return false
		}
		var shards []curatorShard
		if json.Unmarshal([]byte(sh), &shards) != nil || len(shards) == 0 {
			return false
		}
		for _, s := range shards {
			if s.Acked < s.Max {
				return false
			}
		}
		s, err := followerDisk(root, "f1")
		if err != nil || s.DiskPaused != "" || len(s.Shards) != len(shards) {
			return false
		}
		for _, r := range s.Shards {
			if r.State != "stored" || r.Fetched != r.Bytes {
				return false
			}
		}
		return s.DiskReserve == store.DiskReserve // the reserve is whole again
	})

	// Every pin f1 holds is there, block for block, each matching its CID.
	pins := heldPins(t, root, "f1")
	if len(pins) != 16 {
		t.Fatalf("f1 holds %d pins, want 16", len(pins))
	}
	f1.stop(t)
	st, err := store.Open(filepath.Join(root, "f1", "datastore"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dagSvc := merkledag.NewDAGService(blockservice.New(verifiedBlocks{st.Blocks}, nil))
	for _, p := range pins {
		c, err := cid.Decode(p.CID)
		if err != nil {
			t.Fatal(err)
		}
		stat, err := content.DAGStat(context.Background(), dagSvc, c, 0)
		if err != nil {
			t.Fatalf("pin %s: %v", p.CID, err)
		}
		if stat.Bytes != p.Size {
			t.Fatalf("pin %s: %d bytes stored, %d declared", p.CID, stat.Bytes, p.Size)
		}
	}
}

// crashLine returns the lines of a Go crash report in the log at path
// that say what killed the process.
func crashLine(path string) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "unexpected fault address") || strings.HasPrefix(l, "fatal error:") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "[signal ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

type heldPin struct {
	CID   string `json:"cid"`
	Size  int64  `json:"size"`
	State string `json:"state"`
}

func heldPins(t *testing.T, root, name string) []heldPin {
	t.Helper()
	out := run(t, "follow", "--root", root, name, "pins", "--json")
	var pins []heldPin
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var p heldPin
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("follow pins: %v: %s", err, sc.Text())
		}
		if p.State != "stored" {
			t.Fatalf("pin %s is %s, want stored", p.CID, p.State)
		}
		pins = append(pins, p)
	}
	return pins
}

// verifiedBlocks checks every block it returns against its CID.
type verifiedBlocks struct{ blockstore.Blockstore }

func (v verifiedBlocks) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := v.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	sum, err := c.Prefix().Sum(b.RawData())
	if err != nil {
		return nil, err
	}
	if !sum.Equals(c) {
		return nil, fmt.Errorf("block %s: stored bytes hash to %s", c, sum)
	}
	return b, nil
}
