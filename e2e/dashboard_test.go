package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmux drives a private tmux server (its own socket in a temp dir) so the
// test never touches a user's sessions.
type tmux struct {
	t    *testing.T
	dir  string
	sock string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("PINFOLD_REQUIRE_TMUX") != "" {
			t.Fatalf("tmux not found and PINFOLD_REQUIRE_TMUX is set: %v", err)
		}
		t.Skip("tmux not installed (apt-get install tmux); .ci/run installs it")
	}
	// Socket paths are limited to about 100 bytes: keep it short.
	dir, err := os.MkdirTemp("", "pft")
	if err != nil {
		t.Fatal(err)
	}
	m := &tmux{t: t, dir: dir, sock: filepath.Join(dir, "s")}
	t.Cleanup(func() {
		_, _ = m.try("kill-server")
		os.RemoveAll(dir)
	})
	return m
}

func (m *tmux) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-S", m.sock}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	out, err := m.try(args...)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// start runs cmdline in session "dash", in a 100x30 terminal, under a
// shell that writes its exit status to a file when it ends. (tmux's own
// #{pane_dead_status} is not reliable: tmux 3.3a was seen to leave an
// exited pane process unreaped, a zombie, for over 30 s.) remain-on-exit
// keeps the pane, so its last screen can be read.
func (m *tmux) start(cmdline string) {
	m.t.Helper()
	m.run("new-session", "-d", "-s", "dash", "-x", "100", "-y", "30",
		cmdline+"; echo $? > "+filepath.Join(m.dir, "exit"))
	m.run("set-option", "-t", "dash", "remain-on-exit", "on")
}

// exitStatus waits until the command start ran has ended and returns its
// exit status.
func (m *tmux) exitStatus(timeout time.Duration, what string) string {
	m.t.Helper()
	var status string
	waitFor(m.t, timeout, what, func() bool {
		b, err := os.ReadFile(filepath.Join(m.dir, "exit"))
		status = strings.TrimSpace(string(b))
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	return status
}

// capture returns the visible pane text.
func (m *tmux) capture() string {
	out, _ := m.try("capture-pane", "-p", "-t", "dash")
	return out
}

// TestDashboardInRealTerminal runs `follow <c> dashboard` in a real
// terminal (tmux, 100x30) against a follower of a small local cluster:
// the header shows, a shard row reaches ACKed then proven, the keys move between panes
// and open help, and q quits cleanly while the follower keeps running.
func TestDashboardInRealTerminal(t *testing.T) {
	tm := newTmux(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "curator")
	root := filepath.Join(dir, "followers")
	archive := filepath.Join(dir, "archive")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		data := bytes.Repeat([]byte(fmt.Sprintf("part %d of the dashboard archive\n", i)), 40_000)
		if err := os.WriteFile(filepath.Join(archive, fmt.Sprintf("part-%d.txt", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	run(t, "curate", "--home", home, "init", "dashdemo", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", api,
		"--head-interval", "500ms", "--replication-min", "1", "--replication-max", "1", "--shard-size", "1MiB")
	start(t, filepath.Join(dir, "curator.log"), "curate", "--home", home, "daemon", "--log-format", "json")
	waitFor(t, 30*time.Second, "the curator API", func() bool { _, err := curStatus(home); return err == nil })
	run(t, "curate", "--home", home, "add", archive, "--each")
	cfgPath := filepath.Join(dir, "cluster.json")
	run(t, "curate", "--home", home, "export-config", "--out", cfgPath)
	run(t, "follow", "--root", root, "f1", "init", cfgPath, "--storage", "1GiB", "--listen", "/ip4/127.0.0.1/tcp/0")
	flog := filepath.Join(dir, "f1.log")
	f1 := start(t, flog, "follow", "--root", root, "f1", "run", "--pprof")
	waitFor(t, 30*time.Second, "the follower's control API", func() bool {
		_, err := followerStatus(root, "f1")
		return err == nil
	})

	tm.start(filepath.Join(bin, "follow") + " --root " + root + " f1 dashboard")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last screen:\n%s\nfollower log:\n%s", tm.capture(), tail(flog))
		}
	})

	screenHas := func(parts ...string) func() bool {
		return func() bool {
			s := tm.capture()
			for _, p := range parts {
				if !strings.Contains(s, p) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 30*time.Second, "the dashboard header (cluster names, verified head, next action)", screenHas("f1 (dashdemo)", "head seq", "verified", "next: "))
	waitFor(t, 90*time.Second, "a shard row that reaches ACKed", screenHas("ACKed at seq"))

	// Both daemons serve Prometheus metrics, libp2p's among them, on their
	// API; profiles only where asked for (the follower ran with --pprof).
	faddr, err := os.ReadFile(filepath.Join(root, "f1", "api.addr"))
	if err != nil {
		t.Fatal(err)
	}
	body := scrape(t, "http://"+strings.TrimSpace(string(faddr)), true,
		`pinfold_follower_shards{state="stored"} `, "pinfold_follower_head_seq ", "pinfold_follower_stored_bytes ", "libp2p_", "process_resident_memory_bytes ")
	if regexp.MustCompile(`pinfold_follower_shards\{state="stored"\} 0\n`).MatchString(body) {
		t.Errorf("the follower's metrics show no shard stored while its dashboard shows one ACKed")
	}
	// The curator logs JSON lines (--log-format json).
	clog, err := os.ReadFile(filepath.Join(dir, "curator.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(clog)), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("curator log line %q is not a JSON log record (%v)", l, err)
		}
	}
	if len(lines) == 0 || lines[0] == "" {
		t.Error("the curator logged nothing")
	}
	scrape(t, "http://"+api, false, "pinfold_curator_head_seq ", "pinfold_curator_pins 3", `pinfold_curator_members{state="active"} 1`, "libp2p_")
	// The curator audits a fresh commitment at once: the row shows the copy
	// proven, and the follower's own record the pass.
	waitFor(t, 60*time.Second, "a shard row proven by an audit, and the pass on the follower's record",
		screenHas(" ago · ACKed at seq", "passed, 0 failed"))

	// Move the focus from the commitments to the events pane and back; open
	// and close help.
	waitFor(t, 10*time.Second, "focus on commitments", screenHas("▸ commitments"))
	tm.run("send-keys", "-t", "dash", "Tab")
	waitFor(t, 10*time.Second, "focus on events", screenHas("▸ events"))
	tm.run("send-keys", "-t", "dash", "BTab")
	waitFor(t, 10*time.Second, "focus back on commitments", screenHas("▸ commitments"))
	tm.run("send-keys", "-t", "dash", "?")
	waitFor(t, 10*time.Second, "the help view", screenHas("next pane", "Quitting it leaves the follower running"))
	tm.run("send-keys", "-t", "dash", "?")
	waitFor(t, 10*time.Second, "help closed", func() bool { return !strings.Contains(tm.capture(), "next pane") })
	tm.run("send-keys", "-t", "dash", "q")
	status := tm.exitStatus(30*time.Second, "the dashboard to exit")
	if status != "0" {
		t.Fatalf("dashboard exit status %q, want 0; screen:\n%s", status, tm.capture())
	}

	// Quitting the dashboard never stops the follower it attached to.
	select {
	case err := <-f1.done:
		f1.done <- err
		t.Fatalf("the follower exited when the dashboard quit: %v", err)
	default:
	}
	out := run(t, "follow", "--root", root, "f1", "status", "--json")
	var st struct {
		Shards []shardRow `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Shards) == 0 {
		t.Fatalf("follower status after the dashboard quit: %v\n%s", err, out)
	}
}

// TestDemoDashboardInRealTerminal: on a terminal `follow demo` draws the
// curator dashboard while it runs, then prints its report and exits 0.
func TestDemoDashboardInRealTerminal(t *testing.T) {
	tm := newTmux(t)
	tm.start(filepath.Join(bin, "follow") + " demo --dir " + filepath.Join(t.TempDir(), "demo"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last screen:\n%s", tm.capture())
		}
	})
	waitFor(t, 60*time.Second, "the demo's dashboard with its members", func() bool {
		s := tm.capture()
		return strings.Contains(s, "pinfold demo ·") && strings.Contains(s, "members 3") && strings.Contains(s, "alice")
	})
	if status := tm.exitStatus(120*time.Second, "the demo to end"); status != "0" {
		t.Fatalf("demo exit status %q, want 0; screen:\n%s", status, tm.capture())
	}
	if s := tm.capture(); !strings.Contains(s, "demo finished in") || !strings.Contains(s, "HOLDERS (ACKed and proven") {
		t.Fatalf("the demo's report is not on the screen after the dashboard closed:\n%s", s)
	}
}

// scrape reads base's /metrics and fails the test unless every part is in
// it; /debug/pprof/ must answer 200 if profiling, 404 if not. It returns
// the metrics.
func scrape(t *testing.T, base string, profiling bool, parts ...string) string {
	t.Helper()
	get := func(path string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", base, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d", base, code)
	}
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("%s/metrics lacks %q", base, p)
		}
	}
	want := http.StatusNotFound
	if profiling {
		want = http.StatusOK
	}
	if code, _ := get("/debug/pprof/"); code != want {
		t.Errorf("GET %s/debug/pprof/: %d, want %d", base, code, want)
	}
	return body
}
