package p2p

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ledgerScenarios are scripts for liarLedger, one step a line:
//
//	<time> want <peer> <block> have|block   we sent a want
//	<time> cancel <peer> <block>            we sent a cancel
//	<time> unsent <peer> <block>            sending a want-block failed
//	<time> block <peer> <block>             the peer sent a block
//	<time> donthave <peer> <block>          the peer sent DONT_HAVE
//	<time> gone <peer>                      the peer disconnected
//	<time> sweep                            the periodic sweep
//
// A step may end in "-> <peer> unwanted|broken ..." listing the verdicts it
// must return (in peer order); a step without an arrow must return none.
// Times are offsets from an arbitrary start; the promise timeout is 5s.
var ledgerScenarios = []struct{ name, script string }{
	{"wrong bytes: the second junk block condemns", `
		0s want L x block
		0s want H x have
		10ms block L junk1
		20ms block L junk2 -> L unwanted
		30ms block L junk3`},
	{"a block someone was asked for is wanted from anyone", `
		0s want A x have
		0s want B y block
		10ms block B x
		20ms block A y
		10s sweep`},
	{"a duplicate after our cancel is no lie", `
		0s want A x block
		0s want B x have
		10ms block B x
		10ms cancel A x
		30ms block A x
		10s sweep`},
	{"a want-block unanswered past the timeout condemns", `
		0s want L x block
		4999ms sweep
		5s sweep -> L broken`},
	{"HAVE then silence: re-sent wants keep their first time", `
		0s want L x have
		3s want L x block
		6s want L x block
		7999ms sweep
		8s sweep -> L broken`},
	{"DONT_HAVE is an answer", `
		0s want A x block
		1s donthave A x
		10s sweep`},
	{"a slow peer that answers is not condemned", `
		0s want A x block
		0s want A y block
		4s block A x
		5s sweep
		9s block A y
		20s sweep`},
	{"a failed send takes the want back", `
		0s want A x block
		0s unsent A x
		10s sweep`},
	{"three dodged cancels are not enough", `
		0s want A a block
		0s want A b block
		0s want A c block
		1s cancel A a
		1s cancel A b
		1s cancel A c
		10s sweep`},
	{"four dodged cancels with no answer condemn", `
		0s want L a block
		0s want L b block
		1s want L c block
		1s want L d block
		2s cancel L a
		2s cancel L b
		2s cancel L c
		2s cancel L d
		5s sweep
		6s sweep -> L broken`},
	{"an answer resets the dodges", `
		0s want A a block
		0s want A b block
		0s want A c block
		1s cancel A a
		1s cancel A b
		1s cancel A c
		5s sweep
		6s want A d block
		6s want A e block
		7s block A d
		7s cancel A e
		20s sweep`},
	{"one verdict per offence, a fresh book after", `
		0s want L x block
		5s sweep -> L broken
		5s block L junk1
		5s block L junk2
		6s want L y block
		11s sweep
		12s block L junk3
		12s block L junk4 -> L unwanted`},
	{"a want-block cancelled in time by a wanted-again want is owed again", `
		0s want L x block
		1s cancel L x
		2s want L x block
		5s sweep -> L broken`},
	{"a peer that hung up owes nothing", `
		0s want A x block
		0s want A y block
		1s cancel A y
		2s gone A
		10s sweep`},
	{"a condemned peer that hangs up is not judged again", `
		0s want L x block
		5s sweep -> L broken
		5s gone L
		6s block L junk1
		6s block L junk2
		6s sweep`},
	{"two liars, one honest", `
		0s want L1 x block
		0s want L2 y block
		0s want H z block
		10ms block H z
		20ms block L2 junk
		30ms block L2 junk -> L2 unwanted
		6s sweep -> L1 broken`},
}

func TestLedgerScenarios(t *testing.T) {
	for _, sc := range ledgerScenarios {
		t.Run(sc.name, func(t *testing.T) {
			runLedgerScript(t, newLiarLedger(defaultLedgerLimits(5*time.Second)), sc.script)
		})
	}
}

func runLedgerScript(t *testing.T, l *liarLedger, script string) {
	t.Helper()
	start := time.Unix(1_700_000_000, 0)
	for n, line := range strings.Split(strings.TrimSpace(script), "\n") {
		step, want, _ := strings.Cut(strings.TrimSpace(line), "->")
		f := strings.Fields(step)
		d, err := time.ParseDuration(f[0])
		if err != nil {
			t.Fatalf("line %d %q: %v", n+1, line, err)
		}
		now := start.Add(d)
		var got []verdict
		switch f[1] {
		case "want":
			l.wantSent(now, peer.ID(f[2]), f[3], f[4] == "block")
		case "cancel":
			l.cancelSent(peer.ID(f[2]), f[3])
		case "unsent":
			l.unsent(peer.ID(f[2]), f[3])
		case "donthave":
			l.dontHaveReceived(now, peer.ID(f[2]), f[3])
		case "block":
			if v, ok := l.blockReceived(now, peer.ID(f[2]), f[3]); ok {
				got = append(got, v)
			}
		case "gone":
			l.disconnected(peer.ID(f[2]))
		case "sweep":
			got = l.sweep(now)
		default:
			t.Fatalf("line %d %q: unknown step", n+1, line)
		}
		if g, w := verdictText(got), strings.Join(strings.Fields(want), " "); g != w {
			t.Errorf("line %d %q: verdicts %q; want %q", n+1, strings.TrimSpace(line), g, w)
		}
	}
}

func verdictText(vs []verdict) string {
	slices.SortFunc(vs, func(a, b verdict) int { return strings.Compare(string(a.peer), string(b.peer)) })
	var parts []string
	for _, v := range vs {
		kind := "broken"
		if v.reason == ErrUnwantedBlock {
			kind = "unwanted"
		}
		if v.detail == "" {
			kind += "(no detail)"
		}
		parts = append(parts, string(v.peer)+" "+kind)
	}
	return strings.Join(parts, " ")
}

// TestLedgerNeverCondemnsHonestPeers drives the ledger with random
// traffic: honest peers answer want-blocks with the block or DONT_HAVE
// within the promise timeout (sometimes after our cancel), or drop a want
// we cancelled, but never dodgeLimit in a row; they send only blocks
// they were asked for. Liars interleave junk and silence. No honest peer may ever be condemned, and every liar
// must be.
func TestLedgerNeverCondemnsHonestPeers(t *testing.T) {
	const seed = 20260611
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 200 {
		l := newLiarLedger(defaultLedgerLimits(5 * time.Second))
		now := time.Unix(1_700_000_000, 0)
		honest := []peer.ID{"H1", "H2", "H3"}
		liars := []peer.ID{"Ljunk", "Lsilent"}
		condemned := map[peer.ID]bool{}
		type owed struct {
			p    peer.ID
			mh   string
			due  time.Time
			drop bool // the peer processes our cancel before sending
		}
		var queue []owed
		dropped := map[peer.ID]int{} // consecutive drops per honest peer
		judge := func(vs []verdict) {
			for _, v := range vs {
				if slices.Contains(honest, v.peer) {
					t.Fatalf("round %d: honest %s condemned: %v", round, string(v.peer), v.err())
				}
				condemned[v.peer] = true
			}
		}
		// answer sends the honest answers due by until, in order.
		answer := func(until time.Time) {
			slices.SortFunc(queue, func(a, b owed) int { return a.due.Compare(b.due) })
			for len(queue) > 0 && !queue[0].due.After(until) {
				o := queue[0]
				queue = queue[1:]
				switch {
				case o.drop && dropped[o.p] < l.lim.dodgeLimit-1:
					l.cancelSent(o.p, o.mh) // someone else delivered; it never sends
					dropped[o.p]++
				case rng.IntN(4) == 0:
					l.dontHaveReceived(o.due, o.p, o.mh)
					dropped[o.p] = 0
				default:
					judge(vsOf(l.blockReceived(o.due, o.p, o.mh)))
					dropped[o.p] = 0
				}
			}
		}
		for i := range 400 {
			now = now.Add(time.Duration(rng.IntN(200)) * time.Millisecond)
			mh := fmt.Sprintf("b%d", i)
			all := append(slices.Clone(honest), liars...)
			to := all[rng.IntN(len(all))]
			for _, p := range all {
				l.wantSent(now, p, mh, p == to)
			}
			if slices.Contains(honest, to) {
				queue = append(queue, owed{p: to, mh: mh,
					due: now.Add(time.Duration(rng.IntN(4500)) * time.Millisecond), drop: rng.IntN(3) == 0})
			} else if to == "Ljunk" {
				judge(vsOf(l.blockReceived(now, to, "junk"+mh)))
			}
			answer(now)
			if i%5 == 0 {
				judge(l.sweep(now))
			}
		}
		answer(now.Add(time.Hour))
		judge(l.sweep(now.Add(time.Minute)))
		for _, p := range liars {
			if !condemned[p] {
				t.Errorf("round %d: liar %s never condemned", round, string(p))
			}
		}
	}
}

func vsOf(v verdict, ok bool) []verdict {
	if !ok {
		return nil
	}
	return []verdict{v}
}

// TestLedgerBounds: memory stays within the limits, and what falls out
// of the bounds makes no verdict against anyone who was not lying.
func TestLedgerBounds(t *testing.T) {
	lim := defaultLedgerLimits(5 * time.Second)
	lim.maxWanted, lim.maxPending, lim.maxPeers = 8, 3, 2
	l := newLiarLedger(lim)
	now := time.Unix(1_700_000_000, 0)
	for i := range 100 {
		l.wantSent(now, "A", fmt.Sprintf("x%d", i), true)
	}
	if n := len(l.cur) + len(l.prev); n > lim.maxWanted {
		t.Errorf("%d wanted multihashes remembered; limit %d", n, lim.maxWanted)
	}
	if n := len(l.peers["A"].pending); n != lim.maxPending {
		t.Errorf("%d pending want-blocks for A; want the limit %d", n, lim.maxPending)
	}
	l.wantSent(now, "B", "y", true)
	l.wantSent(now, "C", "z", true) // no room: not tracked
	if len(l.peers) > lim.maxPeers {
		t.Errorf("%d peers tracked; limit %d", len(l.peers), lim.maxPeers)
	}
	if _, ok := l.peers["C"]; ok {
		t.Error("C tracked although the table was full of busy peers")
	}
	// A want remembered for at least half of wantMemory, then forgotten.
	l2 := newLiarLedger(defaultLedgerLimits(5 * time.Second))
	l2.wantSent(now, "A", "x", false)
	if _, bad := l2.blockReceived(now.Add(lim.wantMemory/2-time.Second), "A", "x"); bad || l2.peers["A"] != nil && l2.peers["A"].unwanted != 0 {
		t.Error("a block wanted less than wantMemory/2 ago counted as unwanted")
	}
	l2.sweep(now.Add(lim.wantMemory / 2))
	l2.sweep(now.Add(lim.wantMemory))
	l2.blockReceived(now.Add(lim.wantMemory), "A", "x")
	if b := l2.peers["A"]; b == nil || b.unwanted != 1 {
		t.Error("a want from two generations ago is still remembered")
	}
}
