package kubo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/kubo"
	"github.com/pinfold/pinfold/kubo/kubotest"
)

// TestRealKubo runs the client and the Store against a real kubo daemon
// (PINFOLD_KUBO): content added to kubo without a pin is pinned under
// the Store's name, listed, sized and released; the user's own pin is
// left alone.
func TestRealKubo(t *testing.T) {
	bin := kubotest.Binary(t)
	began := time.Now()
	n := kubotest.Start(t, bin)
	t.Logf("kubo ready in %s at %s", time.Since(began).Round(time.Millisecond), n.API)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := kubo.NewClient(n.API, kubo.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(ctx)
	if err != nil || v.Version != "0.39.0" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	id, err := c.ID(ctx)
	if err != nil || id.ID != n.ID {
		t.Fatalf("ID = %+v, %v; want %s", id, err, n.ID)
	}
	if _, err := c.RepoStat(ctx); err != nil {
		t.Fatal(err)
	}

	add := func(name string, size int) cid.Cid {
		p := filepath.Join(t.TempDir(), name)
		data := []byte(strings.Repeat(name+"\n", size/(len(name)+1)))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := n.Run(ctx, "add", "-Q", "--pin=false", "--chunker=size-4096", p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := cid.Decode(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, theirs := add("pinfold-a", 100_000), add("user-b", 5_000)
	if _, err := n.Run(ctx, "pin", "add", "--name", "mine", theirs.String()); err != nil {
		t.Fatal(err)
	}

	s, err := kubo.NewStore(c, kubo.StoreConfig{Name: "pinfold/test/peer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var last content.Stat
	st, err := s.Fetch(ctx, a, func(st content.Stat) { last = st })
	if err != nil {
		t.Fatal(err)
	}
	ds, err := c.DAGStat(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != ds.Bytes || st.Blocks != ds.Blocks || st.Blocks < 2 || last != st {
		t.Fatalf("Fetch = %+v (last progress %+v); dag stat %+v", st, last, ds)
	}
	out, err := n.Run(ctx, "pin", "ls", "--type=recursive", "--names")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), a.String()+" recursive pinfold/test/peer") {
		t.Fatalf("ipfs pin ls does not show the named pin:\n%s", out)
	}
	pins, err := c.PinLs(ctx, []cid.Cid{a, theirs, add("unpinned", 100)})
	if err != nil || len(pins) != 2 || pins[theirs].Name != "mine" {
		t.Fatalf("PinLs = %v, %v", pins, err)
	}
	if u, err := s.Usage(ctx); err != nil || u != st {
		t.Fatalf("Usage = %+v, %v; want %+v", u, err, st)
	}
	if _, err := s.Release(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Kept(ctx, theirs); !ok || err != nil {
		t.Fatalf("the user's pin is gone after Release: %v %v", ok, err)
	}
	if n, err := s.Release(ctx, a); err != nil || n != st.Bytes {
		t.Fatalf("Release = %d, %v", n, err)
	}
	if ok, _, err := s.Kept(ctx, a); ok || err != nil {
		t.Fatalf("Kept after Release = %v, %v", ok, err)
	}
	err = c.PinRm(ctx, a)
	var ke *kubo.Error
	if !errors.As(err, &ke) || !strings.Contains(ke.Message, "not pinned") {
		t.Fatalf("PinRm of an unpinned root: %v; want kubo's error", err)
	}
	t.Logf("real kubo test took %s", time.Since(began).Round(time.Millisecond))
}
