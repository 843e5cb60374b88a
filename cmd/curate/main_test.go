package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/trust"
)

func runCurate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestInitExportVerify(t *testing.T) {
	home := filepath.Join(t.TempDir(), "curator")
	out, err := runCurate(t, "--home", home, "init", "demo", "--replication-min", "1", "--replication-max", "2")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if !strings.Contains(out, "cluster name (IPNS)  k51") {
		t.Fatalf("init did not print the cluster name:\n%s", out)
	}
	for _, p := range []string{"curator.key", "cluster.key"} {
		fi, err := os.Stat(filepath.Join(home, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if out, err := runCurate(t, "--home", home, "init", "demo"); !errors.Is(err, curator.ErrAlreadyInitialised) {
		t.Fatalf("second init: %v\n%s", err, out)
	}

	recPath := filepath.Join(t.TempDir(), "exported.ipns")
	if out, err := runCurate(t, "--home", home, "export-record", "--out", recPath); err != nil {
		t.Fatalf("export-record: %v\n%s", err, out)
	}
	out, err = runCurate(t, "--home", home, "verify-record", recPath)
	if err != nil {
		t.Fatalf("verify-record: %v\n%s", err, out)
	}
	if !strings.Contains(out, "record: valid") || !strings.Contains(out, "head:   verified") {
		t.Fatalf("verify-record output:\n%s", out)
	}

	// A record file with one byte changed is rejected.
	raw, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	bad := filepath.Join(t.TempDir(), "bad.ipns")
	if err := os.WriteFile(bad, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCurate(t, "--home", home, "verify-record", bad); err == nil {
		t.Fatalf("tampered record accepted:\n%s", out)
	}

	// export-config writes a config a follower can load.
	cfgPath := filepath.Join(t.TempDir(), "cluster.json")
	if out, err := runCurate(t, "--home", home, "export-config", "--out", cfgPath,
		"--bootstrap", "/ip4/127.0.0.1/tcp/4050/p2p/12D3KooWGRUVh4G7M6ekLvkK2onxYdj4hJSD9oXbe8GJ97dFVpPk"); err != nil {
		t.Fatalf("export-config: %v\n%s", err, out)
	}
	var c configs.Cluster
	if err := configs.Load(cfgPath, &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "demo" || len(c.Bootstrap) != 1 || len(c.Checkpoint.Trust) != 1 {
		t.Fatalf("exported config: %+v", c)
	}
}

func TestRecordFromAnotherClusterRejected(t *testing.T) {
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	for _, h := range []string{a, b} {
		if out, err := runCurate(t, "--home", h, "init", "demo"); err != nil {
			t.Fatalf("init: %v\n%s", err, out)
		}
	}
	l, err := curator.Home{Dir: b}.Load()
	if err != nil {
		t.Fatal(err)
	}
	name, err := l.ClusterName()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCurate(t, "--home", a, "verify-record", curator.Home{Dir: b}.RecordPath(name))
	if err == nil {
		t.Fatalf("record of cluster b verified as cluster a: %v\n%s", err, out)
	}
}

func TestKeyGenShowAndPermissions(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.key")
	out, err := runCurate(t, "key", "gen", "--out", key)
	if err != nil || !strings.Contains(out, "peer ID    12D3Koo") || !strings.Contains(out, "IPNS name  k51") {
		t.Fatalf("key gen: %v\n%s", err, out)
	}
	if out, err := runCurate(t, "key", "gen", "--out", key); !errors.Is(err, trust.ErrKeyExists) {
		t.Fatalf("key gen over an existing key: %v\n%s", err, out)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCurate(t, "key", "show", key); !errors.Is(err, trust.ErrKeyPermissions) {
		t.Fatalf("world-readable key loaded: %v\n%s", err, out)
	}
}

func TestUsageErrors(t *testing.T) {
	var ue usageError
	if _, err := runCurate(t, "init"); !errors.As(err, &ue) {
		t.Fatalf("init without a name: %v", err)
	}
	if _, err := runCurate(t, "init", "demo", "--shard-size", "lots", "--home", t.TempDir()); !errors.As(err, &ue) {
		t.Fatalf("bad --shard-size: %v", err)
	}
	if out, err := runCurate(t, "--home", t.TempDir(), "init", "a/b"); err == nil {
		t.Fatalf("cluster name with a slash accepted:\n%s", out)
	}
	if _, err := runCurate(t, "--home", t.TempDir(), "export-config"); !errors.Is(err, curator.ErrNotInitialised) {
		t.Fatalf("export-config on an empty home: %v", err)
	}
	// Unknown subcommands are usage errors (exit status 2), not help.
	for _, args := range [][]string{{"pin", "bogus"}, {"members", "rm"}, {"bogus"}, {"pin", "status"}} {
		if out, err := runCurate(t, args...); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error\n%s", args, err, out)
		}
	}
	if out, err := runCurate(t, "--version"); err != nil || !strings.HasPrefix(out, "curate github.com/pinfold/pinfold ") || !strings.Contains(out, "commit") {
		t.Errorf("--version: %v\n%s", err, out)
	}
}

func TestBrokenConfigFile(t *testing.T) {
	home := filepath.Join(t.TempDir(), "curator")
	if out, err := runCurate(t, "--home", home, "init", "demo"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	cfg := curator.Home{Dir: home}.ConfigPath()
	if err := os.WriteFile(cfg, []byte(`{"version": 1, "replication_min": 5, "replication_max": 2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCurate(t, "--home", home, "export-config")
	if !errors.Is(err, configs.ErrInvalid) || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("broken config: %v", err)
	}
}
