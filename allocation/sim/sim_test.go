package sim

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pinfold/pinfold/allocation"
)

// TestReport runs the simulation named by PINFOLD_SIM_MEMBERS /
// PINFOLD_SIM_SHARDS (and optional PINFOLD_SIM_SEED, PINFOLD_SIM_EPSILON,
// PINFOLD_SIM_ALGVER) and prints its report;
// it is skipped unless those are set.
func TestReport(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PINFOLD_SIM_MEMBERS"))
	s, _ := strconv.Atoi(os.Getenv("PINFOLD_SIM_SHARDS"))
	if n == 0 || s == 0 {
		t.Skip("set PINFOLD_SIM_MEMBERS and PINFOLD_SIM_SHARDS to run")
	}
	cfg := DefaultConfig()
	cfg.Members, cfg.Shards = n, s
	if v := os.Getenv("PINFOLD_SIM_EPSILON"); v != "" {
		cfg.Epsilon, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("PINFOLD_SIM_SEED"); v != "" {
		cfg.Seed, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := os.Getenv("PINFOLD_SIM_ALGVER"); v != "" {
		cfg.AlgVer, _ = strconv.ParseInt(v, 10, 64)
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func TestRunSmall(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Members, cfg.Shards, cfg.Seed = 60, 6000, 42
	t.Logf("seed %d", cfg.Seed)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stats.Balance > 1+cfg.Epsilon+1e-9 || rep.Stats.Overfull != 0 || rep.Stats.BelowMin != 0 {
		t.Fatalf("stats %+v", rep.Stats)
	}
	if len(rep.Events) != 5 {
		t.Fatalf("%d events, want 5", len(rep.Events))
	}
	for _, e := range rep.Events {
		if e.LowerBound <= 0 || e.Moved < 0 || e.Ratio < 0.5 || e.Ratio > 3 {
			t.Errorf("event %+v out of range", e)
		}
	}
	again, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rep.Events {
		if rep.Events[i].Moved != again.Events[i].Moved {
			t.Fatalf("event %s moved %d then %d with the same seed", rep.Events[i].Name, rep.Events[i].Moved, again.Events[i].Moved)
		}
	}
	var text, js strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "seed 42") {
		t.Fatalf("text report (%v):\n%s", err, text.String())
	}
	if err := rep.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"moved_bytes"`) {
		t.Fatalf("json report (%v):\n%s", err, js.String())
	}
}

func TestRunMinBelowMax(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Members, cfg.Shards, cfg.MinReplication, cfg.Domains = 40, 3000, 2, 5
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	off := rep.Events[len(rep.Events)-1]
	if off.Name != "offline median" || off.Moved != off.LowerBound {
		t.Fatalf("offline event %+v: want moved == bound", off)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := DefaultConfig()
	cfg.Members, cfg.Shards = 10, 100
	if _, err := Run(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []func(*Config){
		func(c *Config) { c.Members = 1 },
		func(c *Config) { c.Shards = 0 },
		func(c *Config) { c.Replication = 0 },
		func(c *Config) { c.MinReplication = 4 },
		func(c *Config) { c.Fill = 0 },
		func(c *Config) { c.Epsilon = -1 },
		func(c *Config) { c.MedianPledge = 0 },
		func(c *Config) { c.Spread = 0.5 },
		func(c *Config) { c.Domains = -1 },
		func(c *Config) { c.AlgVer = -1 },
		func(c *Config) { c.AlgVer = allocation.Version + 1 },
	}
	for i, edit := range tests {
		c := DefaultConfig()
		edit(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Every version the package computes can be measured, and each keeps the
// balance and capacity bounds.
func TestRunVersions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Members, cfg.Shards, cfg.Seed = 40, 3000, 7
	for v := int64(1); v <= allocation.Version; v++ {
		cfg.AlgVer = v
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.AlgVer != v {
			t.Fatalf("report says version %d, want %d", rep.AlgVer, v)
		}
		if rep.Stats.Balance > 1+cfg.Epsilon+1e-9 || rep.Stats.Overfull != 0 || rep.Stats.BelowMin != 0 {
			t.Fatalf("version %d: stats %+v", v, rep.Stats)
		}
		t.Logf("version %d: join moved %d bytes (ratio %.3f)", v, rep.Events[0].Moved, rep.Events[0].Ratio)
	}
}
