// Package kubotest starts a real kubo daemon for tests, kept to 127.0.0.1:
// a fresh repository (profile test: loopback addresses, no bootstrap
// peers, no mDNS, no AutoConf), routing none, telemetry off.
//
// The binary comes from the PINFOLD_KUBO environment variable; without it
// the tests that need kubo skip. To build kubo 0.39.0 (the Go module proxy
// refuses `go install` of it, and one of its storage dependencies does
// not build with Go 1.26):
//
//	GOTOOLCHAIN=go1.25.5 go mod download github.com/ipfs/kubo@v0.39.0
//	cd $(go env GOMODCACHE)/github.com/ipfs/kubo@v0.39.0
//	GOTOOLCHAIN=go1.25.5 go build -o /some/bin/ipfs ./cmd/ipfs
//	PINFOLD_KUBO=/some/bin/ipfs go test ./...
package kubotest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/kubo"
)

// EnvVar names the kubo binary to test with.
const EnvVar = "PINFOLD_KUBO"

// Binary returns the kubo binary named by PINFOLD_KUBO, or skips t.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvVar)
	if bin == "" {
		t.Skipf("%s is not set: build kubo 0.39.0 (see the kubotest package documentation: "+
			"GOTOOLCHAIN=go1.25.5 go build ./cmd/ipfs in the kubo@v0.39.0 module folder) and set %s=/path/to/ipfs", EnvVar, EnvVar)
	}
	return bin
}

// Node is a running kubo daemon.
type Node struct {
	Bin  string // the ipfs binary
	Repo string // IPFS_PATH
	API  string // RPC API base URL, http://127.0.0.1:port
	ID   string // peer ID
	Log  string // file with the daemon's output
	PID  int
}

// Start initialises a repository in a temporary folder, applies
// settings, and starts the daemon, waiting (at most a minute) until it
// says it is ready. The daemon is stopped, by its PID, when t ends.
// Setting is one config value set (as JSON) before the daemon starts,
// after Start's own: e.g. {"Routing.Type", `"dht"`}.
type Setting struct{ Key, JSON string }

func Start(t testing.TB, bin string, settings ...Setting) *Node {
	t.Helper()
	dir := t.TempDir()
	n := &Node{Bin: bin, Repo: filepath.Join(dir, "repo"), Log: filepath.Join(dir, "daemon.log")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n.mustRun(t, ctx, "init", "--profile", "test", "--empty-repo")
	n.mustRun(t, ctx, "config", "Routing.Type", "none")
	for _, st := range settings {
		n.mustRun(t, ctx, "config", "--json", st.Key, st.JSON)
	}

	logf, err := os.Create(n.Log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "daemon")
	cmd.Env = n.env()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubo: %v", err)
	}
	n.PID = cmd.Process.Pid
	exited := make(chan struct{})
	ready := make(chan struct{})
	go func() { // owned by Start: copies the daemon's stdout until it exits
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			logf.Write(append(sc.Bytes(), '\n'))
			if !seen && strings.TrimSpace(sc.Text()) == "Daemon is ready" {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(logf, out)
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		// Interrupt lets kubo close its repository; Kill after 20 s.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("kubo exited before it was ready; its log:\n%s", n.readLog())
	case <-ctx.Done():
		t.Fatalf("kubo not ready within a minute; its log:\n%s", n.readLog())
	}
	api, err := os.ReadFile(filepath.Join(n.Repo, "api"))
	if err != nil {
		t.Fatalf("kubo ready but no api file: %v", err)
	}
	if n.API, err = kubo.ParseAPI(strings.TrimSpace(string(api))); err != nil {
		t.Fatal(err)
	}
	n.ID = strings.TrimSpace(string(n.mustRun(t, ctx, "config", "Identity.PeerID")))
	return n
}

func (n *Node) env() []string {
	return append(os.Environ(), "IPFS_PATH="+n.Repo, "IPFS_TELEMETRY=off")
}

func (n *Node) readLog() string {
	b, _ := os.ReadFile(n.Log)
	return string(b)
}

// Run runs the ipfs command line against the node (through its API while
// the daemon runs) and returns its standard output, or the error with its
// standard error.
func (n *Node) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Env = n.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &RunError{Args: args, Err: err, Stderr: stderr.String()}
	}
	return out, nil
}

func (n *Node) mustRun(t testing.TB, ctx context.Context, args ...string) []byte {
	t.Helper()
	out, err := n.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunError is a failed ipfs command.
type RunError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *RunError) Error() string {
	return "ipfs " + strings.Join(e.Args, " ") + ": " + e.Err.Error() + ": " + strings.TrimSpace(e.Stderr)
}

func (e *RunError) Unwrap() error { return e.Err }
