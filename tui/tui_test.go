package tui

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/p2p"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) {
	// No colours or attributes: goldens hold plain text.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

// now is the fixed clock of every test.
var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

const (
	peerF  = "12D3KooWFo11owerPeer000000000000000000000000aaaaaa"
	peerC1 = "12D3KooWCurator1000000000000000000000000000ccc111"
	peerC2 = "12D3KooWCurator2000000000000000000000000000ccc222"
	peerM2 = "12D3KooWMember2000000000000000000000000000mmm222"
	peerM3 = "12D3KooWMember3000000000000000000000000000mmm333"
	peerX  = "12D3KooWStranger00000000000000000000000000xxx999"
)

const gib = int64(1) << 30

// followerFixture has a shard in every state, events and a rejection.
func followerFixture() follower.Status {
	return follower.Status{
		Cluster: "mirror", ClusterName: "ia-mirror", ClusterID: "k51abc", Peer: peerF, Nickname: "attic",
		Started: now.Add(-5 * time.Hour),
		Head:    &follower.HeadInfo{CID: "bafyhead42", Seq: 42, Time: now.Add(-3 * time.Minute), Signer: peerC1},
		Pinset:  follower.PinsetInfo{Pins: 120, Bytes: 12 * gib, Shards: 8, CaughtUp: true},
		Pledged: 10 * gib, Free: 50 * gib, Peers: 5,
		Curators: []follower.CuratorInfo{{Peer: peerC1, Connected: true}, {Peer: peerC2}},
		Assigned: 7 * gib, Stored: 3 * gib,
		Bandwidth: p2p.Bandwidth{Down: p2p.Traffic{Limit: 5_000_000, Rate: 4_950_000, Total: 3 << 30}, Up: p2p.Traffic{Rate: 120_000, Total: 80 << 20}},
		Shards: []follower.ShardStatus{
			{ID: 1, Bytes: 2 * gib, Pins: 30, State: follower.ShardStored, Fetched: 2 * gib, Holders: 3, Target: 3, Min: 2, AckedSeq: 42, AckedAt: now.Add(-2 * time.Minute),
				Recorded: true, Proven: true, Audit: ledger.Pass, AuditedAt: now.Add(-20 * time.Minute)},
			{ID: 2, Bytes: gib, Pins: 12, State: follower.ShardStored, Fetched: gib, Holders: 2, Target: 3, Min: 2, AckedSeq: -1},
			{ID: 3, Bytes: 2 * gib, Pins: 25, State: follower.ShardFetching, Fetched: 800 << 20, Holders: 1, Target: 3, Min: 2, AckedSeq: -1},
			{ID: 4, Bytes: 512 << 20, Pins: 7, State: follower.ShardFetching, Fetched: 0, Holders: 2, Target: 3, Min: 2, AckedSeq: -1},
			{ID: 5, Bytes: gib, Pins: 10, State: follower.ShardQueued, Holders: 3, Target: 3, Min: 2, AckedSeq: -1, Since: now.Add(-90 * time.Minute)},
			{ID: 6, Bytes: 256 << 20, Pins: 4, State: follower.ShardReleasing, Fetched: 256 << 20, Holders: 4, Target: 3, Min: 2, AckedSeq: 40},
			{ID: 7, Bytes: 300 << 20, Pins: 5, State: follower.ShardQueued, Holders: 1, Target: 3, Min: 2, AckedSeq: -1, Since: now.Add(-7 * time.Minute),
				Error: "fetch: context deadline exceeded", ErrorAt: now.Add(-30 * time.Second)},
			{ID: 8, Bytes: 128 << 20, Pins: 3, State: follower.ShardStored, Fetched: 128 << 20, Holders: 3, Target: 3, Min: 2, AckedSeq: 42, AckedAt: now.Add(-time.Minute), Recorded: true,
				Since: now.Add(-3 * time.Minute)},
			{ID: 10, Bytes: 64 << 20, Pins: 2, State: follower.ShardStored, Fetched: 64 << 20, Holders: 2, Target: 3, Min: 2, AckedSeq: 41, AckedAt: now.Add(-45 * time.Minute),
				Recorded: true, Audit: ledger.Fail, AuditedAt: now.Add(-15 * time.Minute), AuditReason: "block 3 of path 2 missing"},
			{ID: 11, Bytes: 32 << 20, Pins: 1, State: follower.ShardStored, Fetched: 32 << 20, Holders: 2, Target: 3, Min: 2, AckedSeq: 42, AckedAt: now.Add(-10 * time.Second)},
		},
		AcksPending: 1,
		Audits: ledger.Member{Passes: 12, Fails: 1, Streak: 1, LastPass: 41, LastFail: 42, FailShard: 10,
			FailReason: "block 3 of path 2 missing", FailTime: now.Add(-15 * time.Minute).UnixMilli()},
		Events: []follower.Event{
			{Time: now.Add(-50 * time.Minute), Kind: "head", Text: "verified head seq 41 signed by " + peerC1 + "; pinset caught up"},
			{Time: now.Add(-40 * time.Minute), Kind: "assignment", Text: "head seq 41: 6 shard(s) assigned"},
			{Time: now.Add(-30 * time.Minute), Kind: "fetch", Text: "fetching shard 1: 30 pins, 2147483648 bytes"},
			{Time: now.Add(-10 * time.Minute), Kind: "stored", Text: "shard 1 stored: 2147483648 bytes in 9000 blocks"},
			{Time: now.Add(-3 * time.Minute), Kind: "head", Text: "verified head seq 42 signed by " + peerC1 + "; pinset caught up"},
			{Time: now.Add(-2 * time.Minute), Kind: "ack", Text: "stored shard 1 at seq 42 (2147483648 bytes)"},
			{Time: now.Add(-1 * time.Minute), Kind: "drop", Text: "shard 9 released, 1048576 bytes freed"},
		},
		Rejected: map[string]uint64{"trust: seq not newer": 3, "trust: signature invalid": 1},
		Rejections: []headsync.Rejection{
			{Time: now.Add(-5 * time.Minute), Source: headsync.FromTopic, Peer: peerX, Reason: "trust: signature invalid", Error: "verify head bafybad: trust: signature invalid"},
		},
	}
}

func curatorFixture() CuratorSnapshot {
	return CuratorSnapshot{
		Status: curator.Status{
			Cluster: "mirror", ClusterID: "k51abc", Peer: peerC1,
			Head: &curator.HeadInfo{CID: "bafyhead42", Seq: 42, Time: now.Add(-3 * time.Minute), Signer: peerC1},
			Pins: 120, Bytes: 12 * gib, Shards: 6, Members: 3, Curators: []string{peerC1, peerC2}, Peers: 4, PendingLog: 2,
			RecentHeads: []curator.PublishedHead{
				{CID: "bafyhead42", Seq: 42, Time: now.Add(-3 * time.Minute), Pins: 120, Members: 3, Log: 4},
				{CID: "bafyhead41", Seq: 41, Time: now.Add(-50 * time.Minute), Pins: 118, Members: 3, Log: 1},
			},
			RecentAcks: []curator.ReceivedAck{
				{Time: now.Add(-2 * time.Minute), Peer: peerF, Shard: 1, State: "stored", Seq: 42, Bytes: 2 * gib},
				{Time: now.Add(-4 * time.Minute), Peer: peerM2, Shard: 3, State: "stored", Seq: 41, Bytes: 2 * gib},
				{Time: now.Add(-20 * time.Minute), Peer: peerM3, Shard: 9, State: "released", Seq: 41, Bytes: 1 << 20},
			},
		},
		Members: []curator.MemberLoad{
			{MemberInfo: curator.MemberInfo{Peer: peerF, Nickname: "attic", Pledged: 10 * gib, State: curator.StateActive, LastSeen: now.Add(-30 * time.Second)},
				Assigned: 7 * gib, AssignedShards: 6, Acked: 2 * gib, AckedShards: 1, Proven: 2 * gib, ProvenShards: 1,
				Standing: curator.StandingGood, Audits: ledger.Member{Passes: 12}},
			{MemberInfo: curator.MemberInfo{Peer: peerM2, Nickname: "basement", Pledged: 40 * gib, State: curator.StateActive, LastSeen: now.Add(-90 * time.Second)},
				Assigned: 9 * gib, AssignedShards: 5, Acked: 9 * gib, AckedShards: 5, Proven: 7 * gib, ProvenShards: 4,
				Standing: curator.StandingFailing, StandingWhy: "2 audits failed in a row; last: shard 3: block 3 of path 2 missing",
				Audits: ledger.Member{Passes: 30, Fails: 2, Streak: 2, FailShard: 3, FailReason: "block 3 of path 2 missing", FailTime: now.Add(-5 * time.Minute).UnixMilli()}},
			{MemberInfo: curator.MemberInfo{Peer: peerM3, Nickname: "closet", Pledged: 2 * gib, State: curator.StateOffline, LastSeen: now.Add(-26 * time.Hour)},
				Assigned: gib, AssignedShards: 1, Standing: curator.StandingProbation, StandingWhy: "1 audits passed: capacity 1073741824 of the 2147483648 pledged",
				Audits: ledger.Member{Passes: 1}},
			{MemberInfo: curator.MemberInfo{Peer: peerX, Nickname: "newcomer", Pledged: 100 * gib, State: curator.StatePending, LastSeen: now.Add(-10 * time.Second),
				Refused: "pledge 1.0 PiB over the maximum 64 TiB"}, Standing: curator.StandingProbation},
		},
		// Statuses come from the proven holders; the others only claim.
		Shards: []curator.ShardInfo{
			{ID: 1, Bytes: 2 * gib, Pins: 30, Min: 2, Max: 3, Acked: 3, Proven: 3, Status: curator.ShardAtTarget, Holders: holders(3, 0, 0)},
			{ID: 2, Bytes: gib, Pins: 12, Min: 2, Max: 3, Acked: 3, Proven: 2, Status: curator.ShardUnder, Holders: holders(2, 1, 0),
				Since: now.Add(-20 * time.Minute), Problem: "ACKed, audit pending: m2"},
			{ID: 3, Bytes: 2 * gib, Pins: 25, Min: 2, Max: 3, Acked: 2, Proven: 1, Status: curator.ShardBelowMin, Holders: holders(1, 0, 1),
				Since: now.Add(-2 * time.Hour), Problem: "audit failed on m3 (path 1: block missing)"},
			{ID: 4, Bytes: 512 << 20, Pins: 7, Min: 2, Max: 3, Status: curator.ShardBelowMin,
				Since: now.Add(-5 * time.Minute), Problem: "0 of 3 holders assigned: not enough members with room for 512 MiB"},
			{ID: 5, Bytes: gib, Pins: 10, Min: 2, Max: 3, Acked: 3, Proven: 3, Status: curator.ShardAtTarget, Holders: holders(3, 0, 0)},
			{ID: 6, Bytes: 256 << 20, Pins: 4, Min: 2, Max: 3, Acked: 5, Proven: 4, Status: curator.ShardOver, Holders: holders(4, 1, 0)},
		},
	}
}

// holders returns the holders of a shard: proven ones, then ones that
// only ACKed, then ones whose newest audit failed, taken from the fixture's
// peers in turn.
func holders(proven, unproven, failed int) []curator.HolderInfo {
	peers := []string{peerF, peerM2, peerM3, peerC1, peerC2}
	var hs []curator.HolderInfo
	add := func(h curator.HolderInfo) {
		h.Peer, h.Assigned, h.State, h.Current, h.Recorded = peers[len(hs)], true, ledger.Stored, true, true
		h.AckSeq, h.AckTime = 41, now.Add(-4*time.Minute)
		hs = append(hs, h)
	}
	for range proven {
		add(curator.HolderInfo{Proven: true, Audit: ledger.Pass, AuditedAt: now.Add(-time.Hour)})
	}
	for range unproven {
		add(curator.HolderInfo{})
	}
	for range failed {
		add(curator.HolderInfo{Audit: ledger.Fail, AuditedAt: now.Add(-5 * time.Minute), AuditReason: "block 3 of path 2 missing"})
	}
	return hs
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (-update rewrites it)\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// checkFits fails when the view has more lines than h, a line wider than
// w, or escape codes.
func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("%dx%d: %d lines", w, h, len(lines))
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("%dx%d: line %d is %d wide: %q", w, h, i+1, n, l)
		}
		if strings.Contains(l, "\x1b") {
			t.Errorf("line %d has an escape code: %q", i+1, l)
		}
	}
}

func press(s string) tea.KeyMsg {
	switch s {
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// feed sends messages to a model and returns the command of the last one.
func feed(m tea.Model, msgs ...tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	for _, msg := range msgs {
		_, cmd = m.Update(msg)
	}
	return cmd
}

func typeKeys(m tea.Model, keys ...string) {
	for _, k := range keys {
		m.Update(press(k))
	}
}

var errDown = errors.New("follower: not running: dial tcp 127.0.0.1:9700: connect: connection refused")

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}
