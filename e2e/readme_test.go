package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeCommand is one command of README.md's "A real cluster" section.
type readmeCommand struct {
	line       int    // in README.md
	text       string // as written
	env        map[string]string
	args       []string // program first
	background bool     // ends with &
}

// readmeCommands reads the shell blocks of the README's "A real cluster"
// section: one command per line or per ';', comments dropped, `export
// K=V` lines kept as environment for the commands after them.
func readmeCommands(t *testing.T) []readmeCommand {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	in, block := false, false
	var out []readmeCommand
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "## "):
			in = l == "## A real cluster"
			continue
		case !in:
			continue
		case strings.HasPrefix(l, "```"):
			block = !block && strings.TrimPrefix(l, "```") == "sh"
			continue
		case !block:
			continue
		}
		code, _, _ := strings.Cut(l, " #")
		for _, part := range strings.Split(code, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if strings.ContainsAny(part, `"'$|<>`+"`") {
				t.Fatalf("README.md:%d: %q needs a shell; this test runs plain commands", i+1, part)
			}
			c := readmeCommand{line: i + 1, text: part}
			if rest, ok := strings.CutSuffix(part, "&"); ok {
				c.background, part = true, strings.TrimSpace(rest)
			}
			c.args = strings.Fields(part)
			if c.args[0] == "export" {
				k, v, ok := strings.Cut(part[len("export "):], "=")
				if !ok {
					t.Fatalf("README.md:%d: %q", i+1, part)
				}
				c.env = map[string]string{k: v}
				c.args = nil
			}
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatal(`README.md has no "A real cluster" commands`)
	}
	return out
}

var (
	readmeListen = regexp.MustCompile(`^/ip4/0\.0\.0\.0/tcp/\d+$`)
	readmeAPI    = regexp.MustCompile(`^127\.0\.0\.1:\d+$`)
)

// TestReadmeRealCluster runs README.md's "A real cluster" commands, as
// written, with the real binaries: a curator and two volunteers on one
// host. Only two things differ: HOME is a temporary folder (so the
// default folders of both programs are under it), and the address of
// every --listen and --api flag is on 127.0.0.1 with a free port. It
// checks that every shard's assigned holders hold copies an audit proved,
// and logs the time from the first `follow … run` to the first ACK and to
// every copy ACKed and proven.
func TestReadmeRealCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	work := filepath.Join(dir, "work")
	archive := filepath.Join(work, "archive")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // 6 files of 320 KiB: well under a probationary 1 GiB
		f, err := os.Create(filepath.Join(archive, fmt.Sprintf("part-%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, 320<<10); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	env := map[string]string{}
	environ := func() []string {
		out := []string{"HOME=" + home, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		for _, kv := range os.Environ() { // keep the rest, minus what the README sets
			k, _, _ := strings.Cut(kv, "=")
			if _, set := env[k]; !set && k != "HOME" && k != "PATH" && !strings.HasPrefix(k, "PINFOLD_") {
				out = append(out, kv)
			}
		}
		return out
	}
	// exec runs one command to completion with the README's environment.
	exec1 := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, args[0]), args[1:]...)
		cmd.Dir, cmd.Env = work, environ()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String(), fmt.Errorf("%s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String(), nil
	}
	shardsJSON := func() ([]readmeShard, error) {
		out, err := exec1("curate", "shards", "ls", "--json")
		if err != nil {
			return nil, err
		}
		var ss []readmeShard
		return ss, json.Unmarshal([]byte(out), &ss)
	}

	var (
		procs      []*proc
		followRuns int
		firstRun   time.Time
		added      string // what `curate add` printed
		logs       []string
	)
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range logs {
				t.Logf("%s:\n%s", l, tail(l))
			}
		}
	})
	for _, c := range readmeCommands(t) {
		if c.env != nil {
			for k, v := range c.env {
				if rest, ok := strings.CutPrefix(v, "~/"); ok {
					v = filepath.Join(home, rest)
				}
				env[k] = v
			}
			continue
		}
		args := append([]string(nil), c.args...)
		for i := 1; i < len(args); i++ {
			switch {
			case args[i-1] == "--listen" && readmeListen.MatchString(args[i]):
				args[i] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
			case args[i-1] == "--api" && readmeAPI.MatchString(args[i]):
				args[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
			case args[i-1] == "--listen" || args[i-1] == "--api":
				t.Fatalf("README.md:%d: %s %s: the test knows how to move /ip4/0.0.0.0/tcp/N and 127.0.0.1:N only", c.line, args[i-1], args[i])
			}
		}
		if args[0] != "curate" && args[0] != "follow" {
			t.Fatalf("README.md:%d: %q: not a pinfold command", c.line, c.text)
		}
		if c.background {
			logPath := filepath.Join(dir, fmt.Sprintf("readme-%d.log", c.line))
			logs = append(logs, logPath)
			f, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(bin, args[0]), args[1:]...)
			cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = work, environ(), f, f
			if args[0] == "follow" && followRuns == 0 {
				firstRun = time.Now()
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			p := &proc{name: c.text, cmd: cmd, log: logPath, done: make(chan error, 1)}
			go func() { // owned by the proc: ends when the process exits
				p.done <- cmd.Wait()
				f.Close()
			}()
			t.Cleanup(p.kill)
			procs = append(procs, p)
			// The README's next command needs this one serving: wait as a
			// user would until its status answers.
			ready := []string{"curate", "status"}
			if args[0] == "follow" {
				followRuns++
				ready = []string{"follow", args[1], "status", "--json"}
			}
			waitFor(t, 30*time.Second, c.text+" serving", func() bool {
				out, err := exec1(ready...)
				return err == nil && !strings.Contains(out, `"state": "starting"`)
			})
			continue
		}
		if len(args) >= 3 && args[0] == "curate" && args[1] == "pin" && args[2] == "import" {
			// "CIDs stored elsewhere": here, the pins `curate add` made,
			// which the import finds present and skips.
			var pins strings.Builder
			for _, l := range strings.Split(strings.TrimSpace(added), "\n") {
				f := strings.Split(strings.TrimPrefix(l, "pinned "), "\t")
				fmt.Fprintf(&pins, "%s\t%s\n", f[0], f[2])
			}
			if err := os.WriteFile(filepath.Join(work, args[3]), []byte(pins.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec1(args...)
		if err != nil {
			t.Fatalf("README.md:%d: %v", c.line, err)
		}
		if args[0] == "curate" && args[1] == "add" {
			added = out
		}
		if args[0] == "curate" && args[1] == "pin" && args[2] == "import" && !strings.Contains(out, "0 pins added, 6 already present") {
			t.Fatalf("README.md:%d: %s: %s", c.line, c.text, out)
		}
	}
	if followRuns != 2 {
		t.Fatalf("the README starts %d volunteers; this test expects 2", followRuns)
	}

	// Every shard: its assigned holders ACK it, then an audit proves each
	// copy. Two volunteers under the default replication 2..3 make two
	// holders, so Proven reaches Min and every assigned holder, not Max.
	var firstAck, allAcked time.Time
	var final []readmeShard
	waitFor(t, 3*time.Minute, "every assigned holder of every shard proven", func() bool {
		ss, err := shardsJSON()
		if err != nil || len(ss) == 0 {
			return false
		}
		acked, proven := true, true
		for _, s := range ss {
			assigned := 0
			for _, h := range s.Holders {
				if !h.Assigned {
					continue
				}
				assigned++
				if h.State == "stored" && h.Current && firstAck.IsZero() {
					firstAck = time.Now()
				}
				acked = acked && h.State == "stored" && h.Current
				proven = proven && h.Proven
			}
			acked = acked && assigned >= s.Min
			proven = proven && assigned >= s.Min && s.Proven == assigned
		}
		if acked && allAcked.IsZero() {
			allAcked = time.Now()
		}
		final = ss
		return proven
	})
	allProven := time.Now()
	t.Logf("README path, %d shard(s), 2 volunteers: from the first `follow mirror run` to the first ACK %s, every copy ACKed %s, every copy proven %s",
		len(final), firstAck.Sub(firstRun).Round(100*time.Millisecond), allAcked.Sub(firstRun).Round(100*time.Millisecond),
		allProven.Sub(firstRun).Round(100*time.Millisecond))

	// Each volunteer lists the pins it holds, and says in plain status
	// that its copies are proven.
	for _, root := range []string{"", env["PINFOLD_FOLLOW_HOME"]} {
		args := []string{"follow"}
		if root != "" {
			args = append(args, "--root", root)
		}
		out, err := exec1(append(args, "mirror", "pins")...)
		if err != nil || strings.Count(out, "\tstored\t") != 6 {
			t.Errorf("follow %s mirror pins: %v\n%s", root, err, out)
		}
		out, err = exec1(append(args, "mirror", "status")...)
		if err != nil || !strings.Contains(out, "proven") {
			t.Errorf("follow %s mirror status: %v\n%s", root, err, out)
		}
	}
	for _, p := range procs {
		p.stop(t)
	}
}

// readmeShard is the part of `curate shards ls --json` the README test reads.
type readmeShard struct {
	ID      int64 `json:"id"`
	Min     int   `json:"min"`
	Max     int   `json:"max"`
	Proven  int   `json:"proven"`
	Holders []struct {
		Assigned bool   `json:"assigned"`
		State    string `json:"state"`
		Current  bool   `json:"current"`
		Proven   bool   `json:"proven"`
	} `json:"holders"`
}
