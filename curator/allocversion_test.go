package curator

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/configs"
)

// newestAlgVer returns the allocation version the daemon's newest head
// records.
func newestAlgVer(t *testing.T, d *Daemon) int64 {
	t.Helper()
	v, ok := d.heads.Newest()
	if !ok {
		t.Fatal("no newest head")
	}
	a, err := d.store.DAG.Allocation(context.Background(), v.Head.Allocation)
	if err != nil {
		t.Fatal(err)
	}
	return a.AlgVer
}

// initVersion2 initialises a curator home whose config and genesis head
// use allocation version 2.
func initVersion2(t *testing.T) Home {
	t.Helper()
	cfg := configs.DefaultCurator()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = "127.0.0.1:0"
	cfg.AllocationVersion = 2
	home := Home{Dir: filepath.Join(t.TempDir(), "curator")}
	if _, err := home.Init(context.Background(), InitOptions{Name: "test", Config: cfg, Now: time.Now(), Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	return home
}

// TestAllocationVersionMove: a cluster started on version 2 stays on it
// until its curator's config names another version; the next head then
// records that version, without any other change to publish.
func TestAllocationVersionMove(t *testing.T) {
	ctx := context.Background()
	home := initVersion2(t)

	// The config says 2: genesis records 2 and nothing is published.
	d, err := OpenDaemon(ctx, home, DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := newestAlgVer(t, d); got != 2 {
		t.Fatalf("genesis records version %d, want 2", got)
	}
	if published, err := d.PublishNow(ctx, false); err != nil || published {
		t.Fatalf("PublishNow with nothing changed: published %v, err %v", published, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// No version in the config: the cluster keeps 2.
	setVersion := func(v int) {
		var c configs.Curator
		if err := configs.Load(home.ConfigPath(), &c); err != nil {
			t.Fatal(err)
		}
		c.AllocationVersion = v
		if err := configs.Save(home.ConfigPath(), &c, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setVersion(0)
	d, _ = runDaemon(t, home)
	if published, err := d.PublishNow(ctx, false); err != nil || published {
		t.Fatalf("PublishNow with version 0: published %v, err %v", published, err)
	}
	if got := newestAlgVer(t, d); got != 2 {
		t.Fatalf("newest head records version %d, want 2 kept", got)
	}
}

// TestAllocationVersionMoveTo3: the curators move the cluster to the
// newest version by naming it in the config.
func TestAllocationVersionMoveTo3(t *testing.T) {
	ctx := context.Background()
	home := initVersion2(t)
	var c configs.Curator
	if err := configs.Load(home.ConfigPath(), &c); err != nil {
		t.Fatal(err)
	}
	c.AllocationVersion = allocation.Version
	if err := configs.Save(home.ConfigPath(), &c, 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ := runDaemon(t, home)
	published, err := d.PublishNow(ctx, false)
	if err != nil || !published {
		t.Fatalf("PublishNow after the version change: published %v, err %v", published, err)
	}
	if got := newestAlgVer(t, d); got != allocation.Version {
		t.Fatalf("newest head records version %d, want %d", got, allocation.Version)
	}
}
