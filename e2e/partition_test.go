package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/dag"
)

// netns is a network namespace joined to the host by a veth pair: the
// host end has hostIP, the namespace end nsIP, both in one /24.
type netns struct {
	name, hostIf, nsIf string
	hostIP, nsIP       string
}

// newNetns creates a namespace and its veth pair, named with the pfprt
// prefix, and removes them when the test ends. It skips the test where
// network namespaces are unavailable (not root, no ip command, no
// permission).
func newNetns(t *testing.T) *netns {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("PINFOLD_REQUIRE_NETNS") == "1" { // CI: the test must run
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root to create network namespaces (ip netns add)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("needs the ip command (iproute2) to create network namespaces")
	}
	id := os.Getpid() % 10000
	n := &netns{
		name:   fmt.Sprintf("pfprt-ns%d", id),
		hostIf: fmt.Sprintf("pfprt-h%d", id),
		nsIf:   fmt.Sprintf("pfprt-n%d", id),
		hostIP: fmt.Sprintf("10.247.%d.1", id%250),
		nsIP:   fmt.Sprintf("10.247.%d.2", id%250),
	}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		skip("network namespaces unavailable: ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", n.hostIf).Run() // gone with the namespace already, usually
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	for _, args := range [][]string{
		{"link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf},
		{"link", "set", n.nsIf, "netns", n.name},
		{"addr", "add", n.hostIP + "/24", "dev", n.hostIf},
		{"link", "set", n.hostIf, "up"},
		{"-n", n.name, "addr", "add", n.nsIP + "/24", "dev", n.nsIf},
		{"-n", n.name, "link", "set", n.nsIf, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		n.ip(t, args...)
	}
	return n
}

func (n *netns) ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// cmd runs the binary name inside the namespace.
func (n *netns) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, filepath.Join(bin, name)}, args...)...)
}

// partitionStatus is the part of `follow <c> status --json` the partition
// test reads.
type partitionStatus struct {
	Head *struct {
		CID string `json:"cid"`
	} `json:"head"`
	Pinset struct {
		Pins           int64      `json:"pins"`
		CaughtUp       bool       `json:"caught_up"`
		NoCuratorSince *time.Time `json:"no_curator_since"`
	} `json:"pinset"`
	Curators []struct {
		Connected bool `json:"connected"`
	} `json:"curators"`
	Peers int `json:"peers"`
}

// nsStatus reads a follower's status from inside the namespace (its
// control API listens on the namespace's loopback).
func (n *netns) status(root, name string, asJSON bool) (partitionStatus, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := []string{"--root", root, name, "status"}
	if asJSON {
		args = append(args, "--json")
	}
	var out bytes.Buffer
	c := n.cmd(ctx, "follow", args...)
	c.Stdout = &out
	var s partitionStatus
	if err := c.Run(); err != nil {
		return s, "", err
	}
	if !asJSON {
		return s, out.String(), nil
	}
	return s, out.String(), json.Unmarshal(out.Bytes(), &s)
}

// importBatch adds n new pins (named after batch) through the curator.
func importBatch(t *testing.T, dir, home string, batch, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s\tbatch-%d-%d\t%d\n", dag.CID(fmt.Appendf(nil, "partition pin %d/%d", batch, i)), batch, i, 1000+i)
	}
	path := filepath.Join(dir, fmt.Sprintf("batch-%d.txt", batch))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "curate", "--home", home, "pin", "import", path)
}

// TestPartitionHeals cuts a follower in a network namespace off (its
// link down) for 60 s while the curator publishes new pins. During the
// cut its status must say that no curator is reachable (after the few
// seconds it takes to notice), never "caught up" with an old head; after
// the heal it must reconnect and converge to the curator's head within
// 10 s. The times are logged.
func TestPartitionHeals(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "curator")
	root := filepath.Join(dir, "followers")
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	run(t, "curate", "--home", home, "init", "demo", "--listen", "/ip4/"+ns.hostIP+"/tcp/0", "--api", api, "--head-interval", "1s")
	start(t, filepath.Join(dir, "curator.log"), "curate", "--home", home, "daemon")
	waitFor(t, 30*time.Second, "the curator API", func() bool { _, err := curStatus(home); return err == nil })
	cfgPath := filepath.Join(dir, "cluster.json")
	run(t, "curate", "--home", home, "export-config", "--out", cfgPath)
	run(t, "follow", "--root", root, "f1", "init", cfgPath, "--storage", "1GiB", "--listen", "/ip4/"+ns.hostIP+"/tcp/0", "--nickname", "f1")
	run(t, "follow", "--root", root, "f2", "init", cfgPath, "--storage", "1GiB", "--listen", "/ip4/"+ns.nsIP+"/tcp/0", "--nickname", "f2")
	start(t, filepath.Join(dir, "f1.log"), "follow", "--root", root, "f1", "run")
	f2log := filepath.Join(dir, "f2.log")
	startCmd(t, f2log, "follow f2 run (in "+ns.name+")", ns.cmd(context.Background(), "follow", "--root", root, "f2", "run"))

	pins := 0
	importBatch(t, dir, home, 0, 10)
	pins += 10
	converged := func() (bool, partitionStatus) {
		cs, err := curStatus(home)
		if err != nil || cs.Head == nil {
			return false, partitionStatus{}
		}
		s, _, err := ns.status(root, "f2", true)
		return err == nil && s.Head != nil && s.Head.CID == cs.Head.CID && s.Pinset.CaughtUp && s.Pinset.Pins == int64(pins), s
	}
	// Before the cut: both followers are members (a head lists them), f2
	// holds that head, and it is connected to the curator and to f1.
	waitFor(t, 60*time.Second, "both followers to be members", func() bool {
		cs, err := curStatus(home)
		return err == nil && cs.Members == 2
	})
	waitFor(t, 60*time.Second, "f2 to converge, connected to the curator and f1, before the cut", func() bool {
		ok, s := converged()
		return ok && s.Pinset.NoCuratorSince == nil && len(s.Curators) == 1 && s.Curators[0].Connected && s.Peers >= 2
	})

	// The cut: the host end of the link goes down for 60 s while the
	// curator adds pins every 5 s.
	const cut = 60 * time.Second
	const notice = 15 * time.Second // to notice the cut: pings every 5 s, 5 s timeout
	cutAt := time.Now()
	ns.ip(t, "link", "set", ns.hostIf, "down")
	healed := false
	t.Cleanup(func() {
		if !healed {
			_ = exec.Command("ip", "link", "set", ns.hostIf, "up").Run()
		}
	})
	var noticed time.Duration
	batch := 1
	nextImport := time.Now()
	for time.Since(cutAt) < cut {
		if !time.Now().Before(nextImport) {
			importBatch(t, dir, home, batch, 2)
			batch++
			pins += 2
			nextImport = nextImport.Add(5 * time.Second)
		}
		s, _, err := ns.status(root, "f2", true)
		if err != nil {
			t.Fatalf("f2 status during the cut: %v\n%s", err, tail(f2log))
		}
		honest := s.Pinset.NoCuratorSince != nil
		if honest && noticed == 0 {
			noticed = time.Since(cutAt)
		}
		if !honest && time.Since(cutAt) > notice {
			t.Fatalf("%s into the cut, f2's status does not say that no curator is reachable: %+v", time.Since(cutAt).Round(time.Second), s.Pinset)
		}
		time.Sleep(500 * time.Millisecond) // the sampling rate of the status, not a synchronisation
	}
	_, text, err := ns.status(root, "f2", false)
	if err != nil || !strings.Contains(text, "no curator reachable since") || strings.Contains(text, "caught up") {
		t.Fatalf("f2's status at the end of the cut (err %v):\n%s", err, text)
	}

	// What the curator says of f2 meanwhile (for the log).
	t.Logf("curate members ls at the end of the cut:\n%s", run(t, "curate", "--home", home, "members", "ls"))

	ns.ip(t, "link", "set", ns.hostIf, "up")
	healed = true
	healAt := time.Now()
	var reconnect time.Duration
	poll(t, 100*time.Millisecond, 10*time.Second, "f2 to reconnect and converge within 10 s of the heal", func() bool {
		ok, s := converged()
		if reconnect == 0 && len(s.Curators) > 0 && s.Curators[0].Connected {
			reconnect = time.Since(healAt)
		}
		return ok
	})
	converge := time.Since(healAt)
	if reconnect == 0 {
		reconnect = converge
	}
	t.Logf("cut %s: f2 noticed it after %s; after the heal it reconnected in %s and converged in %s",
		cut, noticed.Round(100*time.Millisecond), reconnect.Round(100*time.Millisecond), converge.Round(100*time.Millisecond))
}
