package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writePins writes n pins, one "cid<TAB>name<TAB>size" line each.
func writePins(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "%s\tfile-%d\t%d\n", dag.CID([]byte("e2e pin "+strconv.Itoa(i))), i, 1000+i%5000)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func pinCount(t *testing.T) int {
	if s := os.Getenv("PINFOLD_E2E_PINS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PINFOLD_E2E_PINS=%q", s)
		}
		return n
	}
	return 100_000
}

// TestClusterProcesses runs the real binaries: a curator daemon, two
// followers, an import, a kill -9 during sync, and a follower that joins
// after the curator has stopped and catches up from another follower.
func TestClusterProcesses(t *testing.T) {
	n := pinCount(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "curator")
	root := filepath.Join(dir, "followers")
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	run(t, "curate", "--home", home, "init", "demo", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", api, "--head-interval", "1s")
	cur := start(t, filepath.Join(dir, "curator.log"), "curate", "--home", home, "daemon")
	waitFor(t, 30*time.Second, "the curator API", func() bool { _, err := curStatus(home); return err == nil })

	cfgPath := filepath.Join(dir, "cluster.json")
	run(t, "curate", "--home", home, "export-config", "--out", cfgPath)
	for _, f := range []string{"f1", "f2", "f3"} {
		run(t, "follow", "--root", root, f, "init", cfgPath, "--storage", "1GiB", "--listen", "/ip4/127.0.0.1/tcp/0", "--nickname", f)
	}
	f1 := start(t, filepath.Join(dir, "f1.log"), "follow", "--root", root, "f1", "run")

	pins := filepath.Join(dir, "pins.txt")
	writePins(t, pins, n)
	began := time.Now()
	run(t, "curate", "--home", home, "pin", "import", pins)
	took := time.Since(began)
	t.Logf("curate pin import of %d pins: %s (%.0f pins/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())

	var want curatorStatus
	waitFor(t, 60*time.Second, "a head with every pin", func() bool {
		s, err := curStatus(home)
		want = s
		return err == nil && s.Head != nil && s.Pins == int64(n)
	})
	converged := func(name string) func() bool {
		return func() bool {
			cs, err := curStatus(home)
			if err == nil {
				want = cs
			}
			s, err := followerStatus(root, name)
			return err == nil && s.Head != nil && want.Head != nil && s.Head.CID == want.Head.CID && s.Pinset.CaughtUp && s.Pinset.Pins == int64(n)
		}
	}
	began = time.Now()
	waitFor(t, 5*time.Minute, "f1 to converge", converged("f1"))
	t.Logf("f1 converged %s after the import", time.Since(began).Round(time.Millisecond))

	// pin ls streams every pin: count the lines, time it, and read the
	// client's peak RSS.
	lines, rss, took := listPins(t, home)
	if lines != n {
		t.Fatalf("pin ls printed %d lines, want %d", lines, n)
	}
	t.Logf("curate pin ls of %d pins: %s, client peak RSS %d KiB", n, took.Round(time.Millisecond), rss)

	// f2 starts, is killed with SIGKILL while it syncs, and restarts.
	f2 := start(t, filepath.Join(dir, "f2.log"), "follow", "--root", root, "f2", "run")
	var s followStatus
	waitFor(t, 60*time.Second, "f2 to be part-way through its sync", func() bool {
		var err error
		s, err = followerStatus(root, "f2")
		return err == nil && (s.Pinset.Pins > 0 || s.Pinset.CaughtUp)
	})
	t.Logf("kill -9 f2 with %d of %d pins synced (caught up: %v)", s.Pinset.Pins, n, s.Pinset.CaughtUp)
	f2.kill()
	f2 = start(t, filepath.Join(dir, "f2-restart.log"), "follow", "--root", root, "f2", "run")
	began = time.Now()
	waitFor(t, 5*time.Minute, "f2 to converge after kill -9", converged("f2"))
	t.Logf("f2 converged %s after restart", time.Since(began).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "both followers as members", func() bool { s, err := curStatus(home); return err == nil && s.Members == 2 })
	t.Logf("peak RSS: curator %d KiB, f1 %d KiB", cur.peakRSS(), f1.peakRSS())

	// The curator stops once f1 holds its newest head (heads admitting f2
	// may have come after the convergence above). f3 joins knowing only
	// f1's addresses.
	waitFor(t, time.Minute, "f1 to hold the curator's newest head", converged("f1")) // converged reads the newest into want
	final := want
	cur.stop(t)
	st, err := followerStatus(root, "f1")
	if err != nil {
		t.Fatal(err)
	}
	var c configs.Cluster
	if err := configs.Load(filepath.Join(root, "f3", "cluster.json"), &c); err != nil {
		t.Fatal(err)
	}
	c.Bootstrap = st.Addrs
	if err := configs.Save(filepath.Join(root, "f3", "cluster.json"), &c, 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, filepath.Join(dir, "f3.log"), "follow", "--root", root, "f3", "run")
	began = time.Now()
	waitFor(t, 5*time.Minute, "f3 to catch up from f1 with the curator down", func() bool {
		s, err := followerStatus(root, "f3")
		return err == nil && s.Head != nil && s.Head.CID == final.Head.CID && s.Pinset.CaughtUp && s.Pinset.Pins == int64(n)
	})
	t.Logf("f3 caught up from f1 in %s", time.Since(began).Round(time.Millisecond))
	out := run(t, "follow", "--root", root, "f3", "status", "--json")
	var withRecord struct {
		Record *struct {
			Seq uint64 `json:"seq"`
		} `json:"record"`
	}
	if err := jsonUnmarshal(out, &withRecord); err != nil {
		t.Fatal(err)
	}
	if withRecord.Record == nil || withRecord.Record.Seq != uint64(final.Head.Seq) {
		t.Fatalf("f3 holds no IPNS record for head seq %d: %s", final.Head.Seq, out)
	}
	f1.stop(t)
	f2.stop(t)
}
