package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memberAudits is the part of `curate members ls --json` this test reads.
type memberAudits struct {
	Peer        string `json:"peer"`
	Standing    string `json:"standing"`
	StandingWhy string `json:"standing_why"`
	Audits      struct {
		Peer       string `json:"peer"`
		Passes     int64  `json:"passes"`
		Fails      int64  `json:"fails"`
		FailReason string `json:"fail_reason"`
	} `json:"audits"`
}

func membersAudits(home string) (map[string]memberAudits, error) {
	out, err := tryRun("curate", "--home", home, "members", "ls", "--json")
	if err != nil {
		return nil, err
	}
	var ms []memberAudits
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return nil, err
	}
	m := map[string]memberAudits{}
	for _, x := range ms {
		m[x.Peer] = x
	}
	return m, nil
}

// auditedCluster writes an archive of files random files of size bytes,
// inits a curator (heads every 300 ms, replication repl, the given shard
// size and audit settings over the defaults), starts its daemon, adds the
// archive and exports the join config. It returns the test folder, the
// curator's home, the followers' root, the config's path and the curator's
// process.
func auditedCluster(t *testing.T, name string, files int, size int64, shardSize string, repl int, auditCfg map[string]any) (dir, home, root, cfgPath string, cur *proc) {
	t.Helper()
	dir = t.TempDir()
	home = filepath.Join(dir, "curator")
	root = filepath.Join(dir, "followers")
	archive := filepath.Join(dir, "archive")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		f, err := os.Create(filepath.Join(archive, fmt.Sprintf("part-%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.CopyN(f, rand.Reader, size)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	run(t, "curate", "--home", home, "init", name, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", api,
		"--head-interval", "300ms", "--replication-min", fmt.Sprint(repl), "--replication-max", fmt.Sprint(repl), "--shard-size", shardSize)
	editJSON(t, filepath.Join(home, "config.json"), func(m map[string]any) {
		a, _ := m["audit"].(map[string]any)
		if a == nil {
			a = map[string]any{}
			m["audit"] = a
		}
		for k, v := range auditCfg {
			a[k] = v
		}
	})
	cur = start(t, filepath.Join(dir, "curator.log"), "curate", "--home", home, "daemon")
	waitFor(t, 30*time.Second, "the curator API", func() bool { _, err := curStatus(home); return err == nil })
	run(t, "curate", "--home", home, "add", archive, "--each")
	cfgPath = filepath.Join(dir, "cluster.json")
	run(t, "curate", "--home", home, "export-config", "--out", cfgPath)
	return dir, home, root, cfgPath, cur
}

// followerPeer waits for follower name's peer ID.
func followerPeer(t *testing.T, root, name string) string {
	t.Helper()
	var self string
	waitFor(t, 30*time.Second, name+"'s peer ID", func() bool {
		out, err := tryRun("follow", "--root", root, name, "status", "--json")
		var s struct {
			Peer string `json:"peer"`
		}
		if err != nil || json.Unmarshal([]byte(out), &s) != nil {
			return false
		}
		self = s.Peer
		return self != ""
	})
	return self
}

// memberAuditsOf returns the audit record `curate members ls` shows for
// peer, or a zero record while the command fails.
func memberAuditsOf(home, peer string) memberAudits {
	ms, err := membersAudits(home)
	if err != nil {
		return memberAudits{}
	}
	return ms[peer]
}

// TestSilentHolderGrace runs the real binaries: a holder frozen (SIGSTOP)
// for less than the audit grace period is asked again when it thaws and
// passes, with no failure recorded; frozen for longer than the grace, the
// audit fails for silence and the member is marked failing.
func TestSilentHolderGrace(t *testing.T) {
	t.Parallel()
	dir, home, root, cfgPath, _ := auditedCluster(t, "grace", 1, 2<<20, "4MiB", 1,
		map[string]any{"interval": "1s", "samples": 2, "timeout": "1s", "grace": "8s"})
	run(t, "follow", "--root", root, "f1", "init", cfgPath, "--storage", "64MiB", "--listen", "/ip4/127.0.0.1/tcp/0")
	f1 := start(t, filepath.Join(dir, "f1.log"), "follow", "--root", root, "f1", "run")
	t.Cleanup(f1.resume) // a stopped process must be resumed to be killed cleanly
	self := followerPeer(t, root, "f1")
	audits := func() memberAudits { return memberAuditsOf(home, self) }
	waitFor(t, time.Minute, "f1 to pass two audits", func() bool { return audits().Audits.Passes >= 2 })

	// Frozen for 4 s, half the grace period: asked again when it thaws.
	f1.pause()
	time.Sleep(4 * time.Second) // the outage under test, not a synchronisation
	f1.resume()
	before := audits().Audits.Passes
	waitFor(t, 30*time.Second, "a pass after the short outage", func() bool { return audits().Audits.Passes > before })
	if a := audits(); a.Audits.Fails != 0 {
		t.Fatalf("an outage shorter than the grace period failed an audit: %+v", a)
	}

	// Frozen past the grace period: silence is a failure.
	f1.pause()
	waitFor(t, time.Minute, "a failure for silence past the grace period", func() bool { return audits().Audits.Fails > 0 })
	f1.resume()
	a := audits()
	if !strings.Contains(a.Audits.FailReason, "grace") || (a.Standing != "failing" && a.Standing != "expelled") {
		t.Fatalf("after a long silence: %+v", a)
	}
	t.Logf("after %d passes, silence failed: %s; standing %s", a.Audits.Passes, a.Audits.FailReason, a.Standing)
}

// TestCuratorRestartKeepsAudits runs the real binaries: a curator stopped
// and started again keeps its members' audit records (its ledger on disk,
// whose peer IDs an earlier format damaged): a member's passes, which set
// its capacity on probation, are still there. No audit can add one after
// the restart: the audit interval is an hour by then.
func TestCuratorRestartKeepsAudits(t *testing.T) {
	t.Parallel()
	dir, home, root, cfgPath, cur := auditedCluster(t, "restart", 1, 2<<20, "4MiB", 1,
		map[string]any{"interval": "1s", "samples": 2, "timeout": "1s", "grace": "8s"})
	run(t, "follow", "--root", root, "f1", "init", cfgPath, "--storage", "64MiB", "--listen", "/ip4/127.0.0.1/tcp/0")
	start(t, filepath.Join(dir, "f1.log"), "follow", "--root", root, "f1", "run")
	self := followerPeer(t, root, "f1")
	waitFor(t, time.Minute, "f1 to pass two audits", func() bool { return memberAuditsOf(home, self).Audits.Passes >= 2 })

	before := memberAuditsOf(home, self).Audits.Passes // more may be recorded before it stops
	cur.stop(t)
	editJSON(t, filepath.Join(home, "config.json"), func(m map[string]any) {
		m["audit"].(map[string]any)["interval"] = "1h"
	})
	start(t, filepath.Join(dir, "curator2.log"), "curate", "--home", home, "daemon")
	var after memberAudits
	waitFor(t, 30*time.Second, "the restarted curator to list f1", func() bool {
		after = memberAuditsOf(home, self)
		return after.Peer != ""
	})
	if after.Audits.Passes < before {
		t.Fatalf("after a restart the curator shows %d audits passed by f1, %d before: %+v", after.Audits.Passes, before, after)
	}
	if after.Audits.Peer != self {
		t.Errorf("the audit record names peer %q, want %s", after.Audits.Peer, self)
	}
	t.Logf("f1: %d passes before the restart, %d after; standing %s", before, after.Audits.Passes, after.Standing)
}
