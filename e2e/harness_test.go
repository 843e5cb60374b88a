package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin holds the binaries built once for the package's tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pinfold-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../cmd/curate", "../cmd/follow")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs a command to completion and returns its stdout.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// tryRun runs a command and returns its stdout and error.
func tryRun(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	out, err := cmd.Output()
	return string(out), err
}

// proc is a background process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

func start(t *testing.T, logPath, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, logPath, name+" "+strings.Join(args, " "), exec.Command(filepath.Join(bin, name), args...))
}

// startCmd starts cmd in the background, its output going to logPath.
func startCmd(t *testing.T, logPath, label string, cmd *exec.Cmd) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: label, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { // owned by the proc: ends when the process exits
		p.done <- cmd.Wait()
		f.Close()
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // later kills return at once
}

// pause stops the process (SIGSTOP) where it is; resume (SIGCONT) lets it
// go on. A paused process still dies of kill.
func (p *proc) pause()  { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *proc) resume() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%s exited with %v; log %s:\n%s", p.name, err, p.log, tail(p.log))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s", p.name)
	}
}

// peakRSS returns the process's peak resident set size in KiB.
func (p *proc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitFor polls cond every 100ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll(t, 100*time.Millisecond, timeout, what, cond)
}

// waitForFast is waitFor polling every 2ms, for conditions that hold only
// briefly.
func waitForFast(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll(t, 2*time.Millisecond, timeout, what, cond)
}

// poll checks cond every interval until it holds or timeout passes.
func poll(t *testing.T, interval, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// followStatus is the part of `follow <c> status --json` the tests read.
type followStatus struct {
	Addrs []string `json:"addrs"`
	Head  *struct {
		CID string `json:"cid"`
		Seq int64  `json:"seq"`
	} `json:"head"`
	Pinset struct {
		Pins     int64 `json:"pins"`
		CaughtUp bool  `json:"caught_up"`
	} `json:"pinset"`
}

func followerStatus(root, name string) (followStatus, error) {
	var s followStatus
	out, err := tryRun("follow", "--root", root, name, "status", "--json")
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal([]byte(out), &s)
}

type curatorStatus struct {
	Addrs []string `json:"addrs"`
	Head  *struct {
		CID string `json:"cid"`
		Seq int64  `json:"seq"`
	} `json:"head"`
	Pins    int64 `json:"pins"`
	Members int   `json:"members"`
}

func curStatus(home string) (curatorStatus, error) {
	var s curatorStatus
	out, err := tryRun("curate", "--home", home, "status", "--json")
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal([]byte(out), &s)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// listPins runs `curate pin ls` and returns the lines it printed, its peak
// RSS in KiB and how long it took.
func listPins(t *testing.T, home string) (int, int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "curate"), "--home", home, "pin", "ls")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines++
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curate pin ls: %v", err)
	}
	took := time.Since(began)
	var rss int64 = -1
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return lines, rss, took
}
