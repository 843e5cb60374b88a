package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/store"
)

// contentNode starts a libp2p node on 127.0.0.1 with its own badger
// store; importFile adds files to it.
type contentNode struct {
	node *p2p.Node
	addr string // for --from
}

func newContentNode(t *testing.T) *contentNode {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "source"))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Blockstore = st.Blocks
	node, err := p2p.New(key, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := node.Close(); err != nil {
			t.Errorf("close content node: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close content store: %v", err)
		}
	})
	return &contentNode{node: node, addr: node.Addrs()[0].String() + "/p2p/" + node.ID().String()}
}

// importFile imports n random bytes and returns the root and its DAG size.
func (c *contentNode) importFile(t *testing.T, n int) (string, int64) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "file")
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := content.Import(ctx, c.node.DAGService(), path, content.ImportOptions{ChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	st, err := content.DAGStat(ctx, c.node.DAGService(), im[0].CID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return im[0].CID.String(), st.Bytes
}

func freeAPI(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCurateDaemon inits a curator home and runs `curate daemon` in this
// process until cleanup.
func startCurateDaemon(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "curator")
	if out, err := runCurate(t, "--home", home, "init", "demo", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", freeAPI(t)); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { // owned by the test: cleanup cancels and waits
		done <- run(ctx, []string{"--home", home, "daemon", "--log-level", "error"}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := runCurate(t, "--home", home, "status"); err == nil {
			return home
		}
		select {
		case err := <-done:
			t.Fatalf("daemon stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon API not up after 30s")
		}
	}
}

func TestPinAddWalksAndChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a daemon and a content node: skipped with -short")
	}
	home := startCurateDaemon(t)
	src := newContentNode(t)
	root, size := src.importFile(t, 100<<10)
	other, otherSize := src.importFile(t, 50<<10)

	// Not connected to the content node and no --from: the walk times
	// out with a clear error.
	began := time.Now()
	out, err := runCurate(t, "--home", home, "pin", "add", other, "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "content unreachable") || !strings.Contains(err.Error(), "walked 0 blocks") {
		t.Fatalf("unreachable pin add: %v\n%s", err, out)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Fatalf("unreachable pin add took %s with --timeout 1s", took)
	}

	out, err = runCurate(t, "--home", home, "pin", "add", root, "--from", src.addr, "--timeout", "1m")
	if err != nil {
		t.Fatalf("pin add without --size: %v\n%s", err, out)
	}
	if !strings.Contains(out, fmt.Sprintf("(%d bytes)", size)) {
		t.Fatalf("pin add did not report the walked size %d:\n%s", size, out)
	}

	// A wrong --size is taken, then reported by pin ls.
	if out, err := runCurate(t, "--home", home, "pin", "add", other, "--size", fmt.Sprint(otherSize+5), "--from", src.addr); err != nil || !strings.Contains(out, "checked in the background") {
		t.Fatalf("pin add --size: %v\n%s", err, out)
	}
	want := map[string]string{
		root:  fmt.Sprintf("%d ok", size),
		other: fmt.Sprintf("%d mismatch: walked %d", otherSize+5, otherSize),
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := runCurate(t, "--home", home, "pin", "ls")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Split(line, "\t"); len(f) == 5 { // cid, shard, size, name, check
				got[f[0]] = f[2] + " " + f[4]
			}
		}
		if reflect.DeepEqual(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pin ls after a minute:\n%s\nwant %v", out, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := runCurate(t, "--home", home, "status"); err != nil || !strings.Contains(out, "size checks") || !strings.Contains(out, "mismatch 1") {
		t.Fatalf("status: %v\n%s", err, out)
	}

	// Usage errors.
	var ue usageError
	for _, args := range [][]string{
		{"pin", "add", root, "--size", "0"},
		{"pin", "add", root, "--timeout", "0s"},
		{"pin", "add", root, "--timeout", "soon"},
	} {
		if out, err := runCurate(t, append([]string{"--home", home}, args...)...); !errors.As(err, &ue) {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
}
