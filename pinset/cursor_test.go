package pinset

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestListAfterResumes cuts a listing at every tenth pin and resumes it
// from the last pin received: together the pieces are List, in List's
// order (shard, then CID key), each pin once.
func TestListAfterResumes(t *testing.T) {
	ctx := context.Background()
	wcfg := testConfig(true)
	s := openSet(t, wcfg, openBadger(t, t.TempDir()), memDAG())
	if _, err := s.Add(ctx, makePins(0, 500, 7, rand.New(rand.NewPCG(1, 2)))); err != nil {
		t.Fatal(err)
	}
	var all []string
	if err := s.List(ctx, func(p Pin) error { all = append(all, pinKey(p.Shard, p.CID)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 500 {
		t.Fatalf("List gave %d pins, want 500", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Fatalf("List is not in key order at %d: %s then %s", i, all[i-1], all[i])
		}
	}

	errCut := errors.New("cut")
	var got []string
	var last *Cursor
	for pieces := 0; ; pieces++ {
		if pieces > 100 {
			t.Fatal("listing does not end")
		}
		n := 0
		each := func(p Pin) error {
			if n == 10 {
				return errCut
			}
			n++
			got = append(got, pinKey(p.Shard, p.CID))
			last = &Cursor{Shard: p.Shard, CID: p.CID}
			return nil
		}
		var err error
		if last == nil {
			err = s.List(ctx, each)
		} else {
			cur, perr := ParseCursor(last.String()) // as a client sends it back
			if perr != nil {
				t.Fatal(perr)
			}
			err = s.ListAfter(ctx, cur, each)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, errCut) {
			t.Fatal(err)
		}
	}
	if len(got) != len(all) {
		t.Fatalf("resumed listing gave %d pins, want %d", len(got), len(all))
	}
	for i := range all {
		if got[i] != all[i] {
			t.Fatalf("pin %d: %s, want %s", i, got[i], all[i])
		}
	}
}

func TestParseCursor(t *testing.T) {
	good := Cursor{Shard: 12, CID: testCID(3)}
	if c, err := ParseCursor(good.String()); err != nil || c != good {
		t.Fatalf("round trip: %v, %v", c, err)
	}
	for _, bad := range []string{"", "12", "-1/" + testCID(1).String(), "x/" + testCID(1).String(), "3/notacid"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}
