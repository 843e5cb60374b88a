package content

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestImportRoundTrip imports a folder with nested folders, an empty
// folder, a symlink and files of every kind, reads everything back
// through a UnixFS reader and compares digests with the disk.
func TestImportRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	if err := GenerateSample(dir, 7, 30, 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("01-letters", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	writeRandFile(t, filepath.Join(dir, "zero-bytes.bin"), 1, 0)
	s := openStore(t)
	dag := offlineDAG(s.Blocks)

	im := importOne(t, dag, dir, 0)
	if im.Path != dir {
		t.Errorf("Path = %q; want %q", im.Path, dir)
	}
	if im.CID.Version() != 1 || im.CID.Type() != cid.DagProtobuf {
		t.Errorf("root %s: want CIDv1 dag-pb", im.CID)
	}
	compareDigests(t, treeDigests(t, dag, im.CID), diskDigests(t, dir))

	st, err := DAGStat(context.Background(), dag, im.CID, 4)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != im.Size || st.Blocks != im.Blocks {
		t.Errorf("Import says %d blocks, %d bytes; DAGStat %d, %d", im.Blocks, im.Size, st.Blocks, st.Bytes)
	}
	var fileBytes int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			fileBytes += fi.Size()
		}
		return nil
	})
	if im.Size < fileBytes || im.Size > fileBytes+fileBytes/50+64<<10 {
		t.Errorf("pin size %d for %d file bytes: want a little more", im.Size, fileBytes)
	}
}

// TestImportPerEntry makes one pin per direct entry and sizes each.
func TestImportPerEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	if err := GenerateSample(dir, 3, 60, 2<<20); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	dag := offlineDAG(s.Blocks)
	got, err := Import(context.Background(), dag, dir, ImportOptions{PerEntry: true})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("%d pins; want one per entry (%d)", len(got), len(entries))
	}
	for i, e := range entries {
		im := got[i]
		if want := filepath.Join(dir, e.Name()); im.Path != want {
			t.Errorf("pin %d path %q; want %q", i, im.Path, want)
		}
		if want := sumSizes(dagBlocks(t, dag, im.CID)); want.Bytes != im.Size || want.Blocks != im.Blocks {
			t.Errorf("%s: size %d in %d blocks; walk says %d in %d", e.Name(), im.Size, im.Blocks, want.Bytes, want.Blocks)
		}
		if e.IsDir() {
			compareDigests(t, treeDigests(t, dag, im.CID), diskDigests(t, im.Path))
		}
	}
}

// TestImportDeepFileAndShardedFolder covers a file DAG with more than
// one level of nodes (over 1024 leaves) and a folder large enough to be
// sharded (HAMT).
func TestImportDeepFileAndShardedFolder(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "deep", "big.bin")
	writeRandFile(t, big, 9, 1100<<10+123) // 1101 leaves of 1 KiB
	wide := filepath.Join(dir, "wide")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 1400 { // 1400 links of about 230 bytes: over the 256 KiB threshold
		name := fmt.Sprintf("%s-%05d.txt", strings.Repeat("entry-with-a-long-name-", 8), i)
		if err := os.WriteFile(filepath.Join(wide, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t)
	dag := offlineDAG(s.Blocks)
	got, err := Import(context.Background(), dag, dir, ImportOptions{PerEntry: true, ChunkSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d pins; want 2", len(got))
	}
	deep, wideIm := got[0], got[1]
	compareDigests(t, treeDigests(t, dag, deep.CID), diskDigests(t, filepath.Join(dir, "deep")))
	if deep.Blocks < 1101+2+1 { // leaves, two inner nodes, root, folder
		t.Errorf("deep pin has %d blocks; want at least 1104", deep.Blocks)
	}
	compareDigests(t, treeDigests(t, dag, wideIm.CID), diskDigests(t, wide))
	root, err := dag.Get(context.Background(), wideIm.CID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(root.Links()); n > hamtFanout {
		t.Errorf("wide folder root has %d links: not sharded", n)
	}
}

// TestImportGolden pins the import profile: the same tree gives the same
// root CIDs forever (a change here changes every pin's CID).
func TestImportGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "golden")
	if err := GenerateSample(dir, 1, 24, 3<<20); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	got, err := Import(context.Background(), offlineDAG(s.Blocks), dir, ImportOptions{PerEntry: true})
	if err != nil {
		t.Fatal(err)
	}
	whole := importOne(t, offlineDAG(s.Blocks), dir, 0)
	var b strings.Builder
	fmt.Fprintf(&b, ". %s %d %d\n", whole.CID, whole.Blocks, whole.Size)
	for _, im := range got {
		fmt.Fprintf(&b, "%s %s %d %d\n", filepath.Base(im.Path), im.CID, im.Blocks, im.Size)
	}
	golden(t, "import_golden.txt", b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	fifoDir := filepath.Join(dir, "withfifo")
	if err := os.Mkdir(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "f.txt")
	writeRandFile(t, file, 2, 10)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		path string
		opt  ImportOptions
		want error
	}{
		{"empty folder per entry", context.Background(), empty, ImportOptions{PerEntry: true}, ErrEmpty},
		{"chunk too small", context.Background(), file, ImportOptions{ChunkSize: 100}, ErrInvalid},
		{"chunk too large", context.Background(), file, ImportOptions{ChunkSize: 2 << 20}, ErrInvalid},
		{"fifo", context.Background(), fifoDir, ImportOptions{}, ErrUnsupported},
		{"missing", context.Background(), filepath.Join(dir, "nope"), ImportOptions{}, fs.ErrNotExist},
		{"cancelled", cancelled, file, ImportOptions{}, context.Canceled},
	}
	s := openStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Import(tt.ctx, offlineDAG(s.Blocks), tt.path, tt.opt)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
	// An empty folder as one pin is fine.
	if im := importOne(t, offlineDAG(s.Blocks), empty, 0); im.Blocks != 1 {
		t.Errorf("empty folder: %d blocks; want 1", im.Blocks)
	}
}
