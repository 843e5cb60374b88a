package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shardRow is the part of a follower's shard rows the tests read.
type shardRow struct {
	ID      int64  `json:"id"`
	State   string `json:"state"`
	Fetched int64  `json:"fetched_bytes"`
	Bytes   int64  `json:"bytes"`
	Digest  []byte `json:"digest"`
}

func followerShards(root, name string) ([]shardRow, error) {
	out, err := tryRun("follow", "--root", root, name, "status", "--json")
	if err != nil {
		return nil, err
	}
	var s struct {
		Shards []shardRow `json:"shards"`
	}
	return s.Shards, json.Unmarshal([]byte(out), &s)
}

// followerShardsAPI is followerShards straight from the control API, a
// few milliseconds instead of a process start.
func followerShardsAPI(root, name string) ([]shardRow, error) {
	addr, err := os.ReadFile(filepath.Join(root, name, "api.addr"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimSpace(string(addr))+"/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status: %s", resp.Status)
	}
	var s struct {
		Shards []shardRow `json:"shards"`
	}
	return s.Shards, json.NewDecoder(resp.Body).Decode(&s)
}

type curatorShard struct {
	ID      int64 `json:"id"`
	Acked   int   `json:"acked"`
	Max     int   `json:"max"`
	Holders []struct {
		Peer    string `json:"peer"`
		State   string `json:"state"`
		Current bool   `json:"current"`
	} `json:"holders"`
}

// TestFollowerKilledMidFetch: a follower is killed with SIGKILL while it
// fetches a shard, restarts, resumes from the blocks it had, and ends with
// every shard stored and ACKed for the current content.
func TestFollowerKilledMidFetch(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "curator")
	root := filepath.Join(dir, "followers")
	archive := filepath.Join(dir, "archive")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 8 { // 8 pins of 12 MiB of random bytes
		f, err := os.Create(filepath.Join(archive, fmt.Sprintf("part-%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, 12<<20); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	run(t, "curate", "--home", home, "init", "demo", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", api,
		"--head-interval", "500ms", "--replication-min", "1", "--replication-max", "1", "--shard-size", "16MiB")
	cur := start(t, filepath.Join(dir, "curator.log"), "curate", "--home", home, "daemon")
	waitFor(t, 30*time.Second, "the curator API", func() bool { _, err := curStatus(home); return err == nil })
	run(t, "curate", "--home", home, "add", archive, "--each")
	cfgPath := filepath.Join(dir, "cluster.json")
	run(t, "curate", "--home", home, "export-config", "--out", cfgPath)
	run(t, "follow", "--root", root, "f1", "init", cfgPath, "--storage", "1GiB", "--listen", "/ip4/127.0.0.1/tcp/0")

	f1 := start(t, filepath.Join(dir, "f1.log"), "follow", "--root", root, "f1", "run")
	// Over loopback f1 fetches a shard in a tenth of a second, too fast to
	// catch part-way by polling. So the curator, its only source, runs in
	// steps: resumed until f1 has fetched more, then paused (SIGSTOP) while
	// f1's progress is read, until f1 is seen part-way through a shard.
	var killedAt shardRow
	var fetched int64
	t.Cleanup(cur.resume) // before the harness kills it
	for step := 0; killedAt.Bytes == 0; step++ {
		if step == 200 {
			t.Fatalf("f1 never seen part-way through a shard in %d steps", step)
		}
		cur.resume()
		before := fetched
		waitForFast(t, 60*time.Second, "f1 to fetch more", func() bool {
			rows, err := followerShardsAPI(root, "f1")
			if err != nil {
				return false
			}
			fetched = 0
			for _, r := range rows {
				fetched += r.Fetched
			}
			return fetched > before
		})
		cur.pause()
		rows, err := followerShardsAPI(root, "f1")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.State == "fetching" && r.Fetched > r.Bytes/4 && r.Fetched < r.Bytes {
				killedAt = r
			}
		}
	}
	f1.kill()
	cur.resume()
	t.Logf("killed f1 with shard %d at %d of %d bytes", killedAt.ID, killedAt.Fetched, killedAt.Bytes)
	restartLog := filepath.Join(dir, "f1-restart.log")
	start(t, restartLog, "follow", "--root", root, "f1", "run")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := tryRun("follow", "--root", root, "f1", "status", "--json")
			t.Logf("f1 status:\n%s\nf1 log:\n%s", out, tail(restartLog))
		}
	})
	waitFor(t, 90*time.Second, "every shard stored by f1 and ACKed for its current content", func() bool {
		out, err := tryRun("curate", "--home", home, "shards", "ls", "--json")
		if err != nil {
			return false
		}
		var shards []curatorShard
		if json.Unmarshal([]byte(out), &shards) != nil || len(shards) == 0 {
			return false
		}
		for _, s := range shards {
			if s.Acked < s.Max {
				return false
			}
		}
		rows, err := followerShards(root, "f1")
		if err != nil || len(rows) != len(shards) {
			return false
		}
		for _, r := range rows {
			if r.State != "stored" || r.Fetched != r.Bytes {
				return false
			}
		}
		return true
	})
}
