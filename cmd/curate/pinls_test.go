package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/pinfold/pinfold/curator"
)

// TestPinLsPages lists 25 pins ten at a time, each page resuming after
// the last pin of the one before, and gets what one listing gives.
func TestPinLsPages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a daemon: skipped with -short")
	}
	home := startCurateDaemon(t)
	importTestPins(t, home, "page", 25)
	pinLines := func(out string) []string { // the listing's lines; the paging hint has no tab
		var ls []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.Contains(l, "\t") {
				ls = append(ls, l)
			}
		}
		return ls
	}
	out, err := runCurate(t, "--home", home, "pin", "ls")
	if err != nil {
		t.Fatal(err)
	}
	all := pinLines(out)
	if len(all) != 25 {
		t.Fatalf("pin ls: %d pins, want 25\n%s", len(all), out)
	}

	var paged []string
	args := []string{"--home", home, "pin", "ls", "--limit", "10"}
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("paging does not end")
		}
		out, err := runCurate(t, args...)
		if err != nil {
			t.Fatalf("page %d: %v\n%s", page, err, out)
		}
		got := pinLines(out)
		paged = append(paged, got...)
		if len(got) < 10 {
			if strings.Contains(out, "the next page") {
				t.Errorf("the last page (%d pins) offers a next page:\n%s", len(got), out)
			}
			break
		}
		_, next, ok := strings.Cut(out, "--after ")
		if !ok {
			t.Fatalf("page %d of 10 pins names no next page:\n%s", page, out)
		}
		cursor := strings.Fields(next)[0]
		f := strings.Split(got[len(got)-1], "\t") // cid, shard, ...
		if want := f[1] + "/" + f[0]; cursor != want {
			t.Fatalf("page %d: next cursor %s, want the last pin's %s", page, cursor, want)
		}
		args = []string{"--home", home, "pin", "ls", "--limit", "10", "--after", cursor}
	}
	if strings.Join(paged, "\n") != strings.Join(all, "\n") {
		t.Fatalf("pages:\n%s\nwant:\n%s", strings.Join(paged, "\n"), strings.Join(all, "\n"))
	}

	// A whole listing resumed after a pin (no --limit: the parallel path)
	// gives the rest, and --json lists the same pins in the same order.
	f := strings.Split(all[11], "\t")
	out, err = runCurate(t, "--home", home, "pin", "ls", "--after", f[1]+"/"+f[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := pinLines(out); strings.Join(got, "\n") != strings.Join(all[12:], "\n") {
		t.Fatalf("pin ls --after the 12th pin:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(all[12:], "\n"))
	}
	out, err = runCurate(t, "--home", home, "pin", "ls", "--json")
	if err != nil {
		t.Fatal(err)
	}
	jl := strings.Split(strings.TrimSpace(out), "\n")
	if len(jl) != len(all) {
		t.Fatalf("pin ls --json: %d lines, want %d\n%s", len(jl), len(all), out)
	}
	for i, l := range jl {
		var p curator.PinJSON
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("pin ls --json line %d: %v: %s", i, err, l)
		}
		if want := strings.Split(all[i], "\t"); p.CID != want[0] || fmt.Sprint(p.Shard) != want[1] || fmt.Sprint(p.Size) != want[2] || p.Name != want[3] {
			t.Errorf("pin ls --json line %d: %s; the text listing has %q", i, l, all[i])
		}
	}

	for _, bad := range [][]string{{"--after", "seven"}, {"--after", "3/notacid"}, {"--limit", "-2"}} {
		out, err := runCurate(t, append([]string{"--home", home, "pin", "ls"}, bad...)...)
		if err == nil {
			t.Errorf("pin ls %v: accepted\n%s", bad, out)
		}
	}
}

// importTestPins imports n pins named <prefix>-<i> into the daemon at
// home and returns their CIDs.
func importTestPins(t *testing.T, home, prefix string, n int) []string {
	t.Helper()
	var lines strings.Builder
	var cids []string
	for i := range n {
		h, err := multihash.Sum([]byte(fmt.Sprint(prefix, " pin ", i)), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		c := cid.NewCidV1(cid.Raw, h).String()
		cids = append(cids, c)
		fmt.Fprintf(&lines, "%s %s-%d %d\n", c, prefix, i, 1000+i)
	}
	list := filepath.Join(t.TempDir(), "pins.txt")
	if err := os.WriteFile(list, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCurate(t, "--home", home, "pin", "import", list); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	return cids
}

// TestPinRmMany unpins CIDs given as arguments and from a file, skipping
// those not pinned, and refuses a file with a bad line before unpinning
// anything.
func TestPinRmMany(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a daemon: skipped with -short")
	}
	home := startCurateDaemon(t)
	cids := importTestPins(t, home, "rm", 20)
	count := func() int {
		out, err := runCurate(t, "--home", home, "pin", "ls")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(out, "\n")
	}
	if out, err := runCurate(t, "--home", home, "pin", "rm", cids[0], cids[1]); err != nil || !strings.Contains(out, "unpinned 2; 0 were not pinned") {
		t.Fatalf("pin rm two CIDs: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "rm.txt")
	body := "# retire these\n\n" + cids[1] + "\n" + strings.Join(cids[2:10], " some-name 12\n") + "\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCurate(t, "--home", home, "pin", "rm", "--from", file); err != nil || !strings.Contains(out, "unpinned 8; 1 were not pinned") {
		t.Fatalf("pin rm --from: %v\n%s", err, out)
	}
	if n := count(); n != 10 {
		t.Fatalf("after removing 10 of 20 pins, pin ls lists %d", n)
	}
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte(cids[10]+"\nnot-a-cid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCurate(t, "--home", home, "pin", "rm", "--from", bad); err == nil || !strings.Contains(err.Error()+out, "line 2") {
		t.Fatalf("pin rm --from a file with a bad line 2: %v\n%s", err, out)
	}
	if n := count(); n != 10 {
		t.Fatalf("a refused removal changed the pinset: %d pins, want 10", n)
	}
	if out, err := runCurate(t, "--home", home, "pin", "rm"); err == nil {
		t.Fatalf("pin rm with nothing to remove: accepted\n%s", out)
	}
}
