package localcluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinfold/pinfold/audit"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/p2p"
)

// The NAT test's network, all inside network namespaces named pfnat-*:
//
//	curator 11.0.0.10 ── bridge "public" 11.0.0.0/24 ──┬── router A 11.0.0.2 (MASQUERADE) ── 10.1.0.2 follower A
//	                                                  └── router B 11.0.0.3 (MASQUERADE) ── 10.2.0.2 follower B
//
// 11.0.0.0/24 is used because libp2p only treats publicly routable
// addresses as public (AutoNAT, hole punching); the namespaces have no
// route out of the machine, so nothing is ever sent to that network.
const (
	natPort    = 14160
	natEnvRole = "PINFOLD_NAT_ROLE"
	natEnvDir  = "PINFOLD_NAT_DIR"
	natPrefix  = "/pinfold/nat-test"
	natCluster = "nat-test"
	natBlocks  = 64      // blocks of the shard follower A fetches from B
	natBlockSz = 1 << 14 // bytes per block
)

// natResult is what the fetcher reports.
type natResult struct {
	Found       time.Duration `json:"found"`        // provider lookup answered
	Connected   time.Duration `json:"connected"`    // first connection to the holder (relayed or direct)
	Direct      time.Duration `json:"direct"`       // first direct connection to the holder; 0 if none
	FirstRelay  bool          `json:"first_relay"`  // the first connection went through the relay
	Fetched     time.Duration `json:"fetched"`      // every block fetched
	Blocks      int           `json:"blocks"`       // blocks fetched
	Root        string        `json:"root"`         // the shard's root fetched
	Heads       int           `json:"heads"`        // heads received from the curator
	Reach       string        `json:"reach"`        // AutoNAT's verdict when the fetch began
	RelayAddrs  int           `json:"relay_addrs"`  // relay addresses held then
	ObservedOK  bool          `json:"observed_ok"`  // a public (NAT) address was known then
	ProvideKeys int64         `json:"provide_keys"` // (holder) roots announced
}

// TestNATTraversal: follower A behind NAT A finds the holder of a shard,
// follower B behind NAT B, by provider lookup in the cluster DHT, reaches
// it through the curator's relay, upgrades to a direct connection by hole
// punching when the NATs allow it, and fetches the shard over bitswap.
// Meanwhile the curator's heads reach both followers and their ACKs reach
// the curator over gossipsub. Every node is set up by
// configs.Network.Apply, the same mapping the daemons use, with the
// followers' production NAT defaults.
func TestNATTraversal(t *testing.T) {
	if os.Getenv(natEnvRole) != "" {
		t.Skip("helper process")
	}
	t.Parallel()
	nets := newNATNet(t)
	dir := t.TempDir()

	cur := nets.spawn(t, dir, "pub", "curator")
	curAddr := waitFile(t, dir, "curator.addr", 30*time.Second)
	fb := nets.spawn(t, dir, "fb", "holder", "PINFOLD_NAT_CURATOR="+curAddr)
	fa := nets.spawn(t, dir, "fa", "fetcher", "PINFOLD_NAT_CURATOR="+curAddr)

	raw := waitFile(t, dir, "fetcher.json", 90*time.Second)
	var res natResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("fetcher result %q: %v", raw, err)
	}
	holderRoot := waitFile(t, dir, "holder.root", 5*time.Second)
	// The file counts the followers heard from so far; it is written at
	// the first ACK, so wait for both rather than read its first value.
	acks := waitFileUntil(t, dir, "curator.acks", 30*time.Second, func(v string) bool { return v == "2" })
	auditResult := waitFile(t, dir, "curator.audit", 60*time.Second)
	if err := os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	relayBytes := waitFile(t, dir, "curator.relay", 30*time.Second)
	for _, p := range []*exec.Cmd{fa, fb, cur} {
		waitExit(t, p)
	}

	if res.Blocks != natBlocks+1 || res.Root != holderRoot {
		t.Errorf("fetched %d blocks of %s; want %d blocks of %s", res.Blocks, res.Root, natBlocks+1, holderRoot)
	}
	if res.Heads == 0 {
		t.Error("follower A received no head from the curator")
	}
	if acks != "2" {
		t.Errorf("curator received ACKs from %s followers; want 2", acks)
	}
	if !strings.HasPrefix(auditResult, "ok ") {
		t.Errorf("the curator's audit of follower B, behind its NAT: %s", auditResult)
	} else {
		t.Logf("the curator audited follower B through its NAT: %s paths verified", strings.TrimPrefix(auditResult, "ok "))
	}
	var hold natResult
	if err := json.Unmarshal([]byte(waitFile(t, dir, "holder.json", 5*time.Second)), &hold); err != nil {
		t.Fatal(err)
	}
	t.Logf("follower A (NAT A): %s; AutoNAT %s, %d relay addresses at the end; found the holder by provider lookup %s after start; fetched %d blocks (%d KiB) by %s",
		natPath(res), res.Reach, res.RelayAddrs, res.Found.Round(time.Millisecond), res.Blocks, natBlocks*natBlockSz>>10, res.Fetched.Round(time.Millisecond))
	t.Logf("follower B (NAT B): %s", natPath(hold))
	t.Logf("curator relayed %s bytes", relayBytes)
	if res.Direct == 0 || hold.Direct == 0 {
		t.Errorf("no direct connection between the followers (A %s, B %s): the NATs were not traversed", res.Direct, hold.Direct)
	}
}

// natPath says how a follower first reached the other, and when.
func natPath(r natResult) string {
	switch {
	case r.Connected == 0:
		return "never connected to the other follower"
	case r.FirstRelay && r.Direct > 0:
		return fmt.Sprintf("first connected through the curator's relay %s after start, then directly (hole punched) at %s",
			r.Connected.Round(time.Millisecond), r.Direct.Round(time.Millisecond))
	case r.FirstRelay:
		return fmt.Sprintf("connected through the curator's relay %s after start, never directly", r.Connected.Round(time.Millisecond))
	}
	return fmt.Sprintf("first connected directly %s after start, without the relay: both sides dialled each other's NAT address at once (each learnt it from the curator)",
		r.Direct.Round(time.Millisecond))
}

// natNet is the set of namespaces of one test.
type natNet struct{ ns map[string]string } // short name -> namespace

func newNATNet(t *testing.T) *natNet {
	t.Helper()
	// skip skips, or fails where PINFOLD_REQUIRE_NETNS=1 (CI) says the
	// test must run.
	skip := t.Skipf
	if os.Getenv("PINFOLD_REQUIRE_NETNS") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("network namespaces need root; skipping the NAT test")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip("%s not found (%v); the NAT test needs iproute2 and iptables", bin, err)
		}
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	n := &natNet{ns: map[string]string{}}
	for _, s := range []string{"pub", "ra", "rb", "fa", "fb"} {
		n.ns[s] = "pfnat" + id + s
	}
	probe := n.ns["pub"]
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		skip("cannot create a network namespace (%v: %s); skipping the NAT test", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		for _, ns := range n.ns {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, s := range []string{"ra", "rb", "fa", "fb"} {
		n.sh(t, "ip netns add "+n.ns[s])
	}
	pub, ra, rb, fa, fb := n.ns["pub"], n.ns["ra"], n.ns["rb"], n.ns["fa"], n.ns["fb"]
	n.sh(t,
		"ip -n "+pub+" link add pubbr type bridge",
		"ip -n "+pub+" addr add 11.0.0.10/24 dev pubbr",
		"ip -n "+pub+" link set pubbr up",
		"ip -n "+pub+" link set lo up",
	)
	for _, r := range []struct{ router, host, wan, lan, hostIP string }{
		{ra, fa, "11.0.0.2/24", "10.1.0.1/24", "10.1.0.2/24"},
		{rb, fb, "11.0.0.3/24", "10.2.0.1/24", "10.2.0.2/24"},
	} {
		gw := strings.TrimSuffix(r.lan, "/24")
		n.sh(t,
			"ip -n "+pub+" link add up0 type veth peer name wan netns "+r.router,
			"ip -n "+pub+" link set up0 master pubbr",
			"ip -n "+pub+" link set up0 name p"+r.router[len(r.router)-2:],
			"ip -n "+pub+" link set p"+r.router[len(r.router)-2:]+" up",
			"ip -n "+r.router+" addr add "+r.wan+" dev wan",
			"ip -n "+r.router+" link set wan up",
			"ip -n "+r.router+" link set lo up",
			"ip -n "+r.router+" link add lan type veth peer name eth0 netns "+r.host,
			"ip -n "+r.router+" addr add "+r.lan+" dev lan",
			"ip -n "+r.router+" link set lan up",
			"ip -n "+r.host+" addr add "+r.hostIP+" dev eth0",
			"ip -n "+r.host+" link set eth0 up",
			"ip -n "+r.host+" link set lo up",
			"ip -n "+r.host+" route add default via "+gw,
			"ip netns exec "+r.router+" sysctl -qw net.ipv4.ip_forward=1",
			"ip netns exec "+r.router+" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE",
			// A home router: replies and related traffic come in; anything
			// else is dropped without an answer (no RST, no ICMP), which
			// is what lets a simultaneous open through.
			"ip netns exec "+r.router+" iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
			"ip netns exec "+r.router+" iptables -A FORWARD -i wan -j DROP",
			"ip netns exec "+r.router+" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
			"ip netns exec "+r.router+" iptables -A INPUT -i wan -j DROP",
		)
	}
	return n
}

// sh runs each command line (no shell), failing t on the first error.
func (n *natNet) sh(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		f := strings.Fields(l)
		if out, err := exec.Command(f[0], f[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", l, err, out)
		}
	}
}

// spawn runs this test binary as a helper with role inside namespace ns;
// it is killed (by PID) when the test ends.
func (n *natNet) spawn(t *testing.T, dir, ns, role string, env ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, role+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.ns[ns], self, "-test.run", "^TestNATHelper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, natEnvRole+"="+role, natEnvDir+"="+dir)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s log:\n%s", role, lastLines(string(b), 40))
		}
	})
	return cmd
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("helper %v: %v", cmd.Args[len(cmd.Args)-4:], err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("helper did not stop within 30 s")
	}
}

// waitFile waits until dir/name exists and is not empty, and returns it.
func waitFile(t testing.TB, dir, name string, timeout time.Duration) string {
	t.Helper()
	v := waitFileUntil(t, dir, name, timeout, func(string) bool { return true })
	if v == "" {
		t.Fatalf("%s not written within %s", name, timeout)
	}
	return v
}

// waitFileUntil polls the file until done accepts its content or timeout
// passes, and returns the last content read ("" if it was never written).
func waitFileUntil(t testing.TB, dir, name string, timeout time.Duration, done func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && len(b) > 0 {
			last = strings.TrimSpace(string(b))
			if done(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(50 * time.Millisecond) // polling a file another process writes
	}
}

// writeFile writes atomically, so waitFile never reads half of it.
func writeFile(t testing.TB, dir, name, data string) {
	t.Helper()
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestNATHelper is one node of TestNATTraversal, run in its namespace.
func TestNATHelper(t *testing.T) {
	role := os.Getenv(natEnvRole)
	if role == "" {
		t.Skip("runs only as a helper of TestNATTraversal")
	}
	dir := os.Getenv(natEnvDir)
	// The test network has two peers per follower; a real cluster has
	// more. libp2p advertises an address observed by others (the NAT's)
	// only once 4 peers saw it, so that a single liar cannot steer it.
	observedaddrs.ActivationThresh = 1
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", natPort), fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", natPort)}
	cfg.Blockstore = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	cfg.ReconnectMin = 200 * time.Millisecond
	cfg.ReconnectMax = 2 * time.Second
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	netw := configs.Network{ClusterID: "nat-test", Listen: cfg.Listen, Cluster: configs.DefaultClusterDHT(), DHT: configs.DefaultDHT()}
	if role == "curator" {
		netw.NAT = configs.DefaultCuratorNAT()
		netw.NAT.Reachability = "public" // a curator on a server with a public address
	} else {
		netw.NAT = configs.DefaultFollowerNAT()
		// The curator's QUIC and TCP addresses, as a cluster file lists them.
		cur := strings.Fields(os.Getenv("PINFOLD_NAT_CURATOR"))
		cfg.Bootstrap = cur
		netw.Relays = cur
	}
	netw.Apply(&cfg)
	cfg.ClusterDHT.ProtocolPrefix = natPrefix
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("role", role)
	n, err := p2p.New(key, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		<-runDone
	}()
	heads, err := n.JoinTopic("nat-heads", func(context.Context, *pubsub.Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	acks, err := n.JoinTopic("nat-acks", func(context.Context, *pubsub.Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	switch role {
	case "curator":
		natCurator(t, ctx, n, dir, heads, acks, reg)
	case "holder":
		natHolder(t, ctx, n, cfg.Blockstore, dir, heads, acks)
	case "fetcher":
		natFetcher(t, ctx, n, dir, heads, acks)
	}
}

func natCurator(t *testing.T, ctx context.Context, n *p2p.Node, dir string, heads, acks *p2p.Topic, reg *prometheus.Registry) {
	sub, err := acks.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "curator.addr", fmt.Sprintf("/ip4/11.0.0.10/udp/%d/quic-v1/p2p/%s /ip4/11.0.0.10/tcp/%d/p2p/%s", natPort, n.ID(), natPort, n.ID()))
	from := map[peer.ID]bool{}
	got := make(chan peer.ID, 16)
	go func() { // owned by natCurator: ends when ctx does
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			got <- m.ReceivedFrom
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	audited := false
	var auditFrom time.Time // first attempt
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			t.Fatal("curator: stopped before the test said stop")
		case p := <-got:
			from[p] = true
			writeFile(t, dir, "curator.acks", fmt.Sprint(len(from)))
		case <-tick.C:
			_ = heads.Publish(ctx, fmt.Appendf(nil, "head %d", seq))
			if !audited {
				// Retried, as a curator retries within its grace period:
				// the holder, behind its NAT, can be reached only while a
				// connection (direct or relayed) to it is up.
				if res, ran := natAudit(t, ctx, n, dir); ran {
					if auditFrom.IsZero() {
						auditFrom = time.Now()
					}
					if strings.HasPrefix(res, "ok ") || time.Since(auditFrom) > 45*time.Second {
						writeFile(t, dir, "curator.audit", res)
						audited = true
					}
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
				writeFile(t, dir, "curator.relay", fmt.Sprint(relayedBytes(t, reg)))
				return
			}
		}
	}
}

// natAudit challenges the holder (behind NAT B) for its shard once it has
// written its ID and root, and returns the outcome ("ok <paths>" when the
// answer verifies) and whether it ran.
func natAudit(t *testing.T, ctx context.Context, n *p2p.Node, dir string) (string, bool) {
	idText, err1 := os.ReadFile(filepath.Join(dir, "holder.id"))
	rootText, err2 := os.ReadFile(filepath.Join(dir, "holder.root"))
	if err1 != nil || err2 != nil || len(idText) == 0 || len(rootText) == 0 {
		return "", false
	}
	holder, err := peer.Decode(strings.TrimSpace(string(idText)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(strings.TrimSpace(string(rootText)))
	if err != nil {
		t.Fatal(err)
	}
	client, err := audit.NewClient(n.Host(), natCluster, audit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := audit.NewChallenge(n.ID(), 0, dag.CID([]byte("nat test head")), []byte("nat test shard"),
		[]audit.PinRef{{CID: root, Size: natBlocks * natBlockSz}}, 4, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	result := ""
	resp, err := client.Challenge(ctx, holder, ch)
	if err == nil {
		var paths int
		if paths, err = audit.Verify(ch, resp); err == nil {
			result = fmt.Sprintf("ok %d", paths)
		}
	}
	if err != nil {
		result = "failed: " + err.Error()
	}
	return result, true
}

// relayedBytes sums libp2p's relay service counter of bytes relayed.
func relayedBytes(t *testing.T, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "libp2p_relaysvc_data_transferred_bytes_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// awaitHead waits for one head from the curator.
func awaitHead(t *testing.T, ctx context.Context, heads *p2p.Topic) int {
	sub, err := heads.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatalf("no head from the curator: %v", err)
	}
	return 1
}

func natHolder(t *testing.T, ctx context.Context, n *p2p.Node, bs blockstore.Blockstore, dir string, heads, acks *p2p.Topic) {
	begin := time.Now()
	writeFile(t, dir, "holder.id", n.ID().String())
	fetcher, err := peer.Decode(waitFile(t, dir, "fetcher.id", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w := watchConn(n, fetcher, begin)
	// The shard: natBlocks random raw blocks under one dag-pb root.
	root := merkledag.NodeWithData(nil)
	var nodes []ipld.Node
	for i := 0; i < natBlocks; i++ {
		data := make([]byte, natBlockSz)
		if _, err := io.ReadFull(rand.Reader, data); err != nil {
			t.Fatal(err)
		}
		leaf := merkledag.NewRawNode(data)
		if err := root.AddNodeLink(fmt.Sprint(i), leaf); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, leaf)
	}
	nodes = append(nodes, root)
	if err := n.DAGService().AddMany(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	// Audits: the curator challenges this holder through its NAT.
	curator, err := peer.AddrInfoFromString(strings.Fields(os.Getenv("PINFOLD_NAT_CURATOR"))[0])
	if err != nil {
		t.Fatal(err)
	}
	srv, err := audit.Serve(n.Host(), natCluster, curator.ID, bs, func(p peer.ID) bool { return p == curator.ID },
		audit.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := n.Provide(root.Cid()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "holder.root", root.Cid().String())
	awaitHead(t, ctx, heads)
	go natAckLoop(t, ctx, dir, acks)
	select {
	case <-w.direct:
	case <-ctx.Done():
	}
	c, d, r := w.result()
	writeFile(t, dir, "holder.json", fmt.Sprintf(`{"connected":%d,"direct":%d,"first_relay":%v}`, c, d, r))
	for {
		if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil || ctx.Err() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling the stop file
	}
}

// natAckLoop sends an ACK every 500 ms until the test says stop or ctx
// ends.
func natAckLoop(t *testing.T, ctx context.Context, dir string, acks *p2p.Topic) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
			return
		}
		_ = acks.Publish(ctx, []byte("ack"))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// connWatch records, from the helper's start, when this node first
// connected to another one, whether that first connection was relayed,
// and when it first had a direct one, from libp2p's connection
// notifications.
type connWatch struct {
	mu                  sync.Mutex
	direct              chan struct{} // closed at the first direct connection
	connected, directAt time.Duration
	firstRelay          bool
}

// watchConn starts recording n's connections to p; call it before any
// can open. The notifications stop with the host.
func watchConn(n *p2p.Node, p peer.ID, begin time.Time) *connWatch {
	w := &connWatch{direct: make(chan struct{})}
	n.Host().Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() != p {
			return
		}
		relayed := isCircuit(c.RemoteMultiaddr())
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.connected == 0 {
			w.connected, w.firstRelay = time.Since(begin), relayed
		}
		if !relayed && w.directAt == 0 {
			w.directAt = time.Since(begin)
			close(w.direct)
		}
	}})
	return w
}

// result returns what was seen so far.
func (w *connWatch) result() (connected, direct time.Duration, firstRelay bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.connected, w.directAt, w.firstRelay
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func natFetcher(t *testing.T, ctx context.Context, n *p2p.Node, dir string, heads, acks *p2p.Topic) {
	begin := time.Now()
	writeFile(t, dir, "fetcher.id", n.ID().String())
	holder, err := peer.Decode(waitFile(t, dir, "holder.id", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w := watchConn(n, holder, begin)
	res := natResult{}
	res.Heads = awaitHead(t, ctx, heads)
	go natAckLoop(t, ctx, dir, acks)
	root, err := cid.Decode(waitFile(t, dir, "holder.root", 60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	defer fcancel()
	provs, err := n.FindProviders(fctx, root, 1)
	if err != nil || len(provs) != 1 || provs[0].ID != holder {
		t.Fatalf("provider lookup of %s: %v %v; want %s", root, provs, err, holder)
	}
	res.Found = time.Since(begin)
	rootNode, err := n.DAGService().Get(fctx, root)
	if err != nil {
		t.Fatalf("fetch root %s: %v; connections: %v; NAT %+v", root, err, n.Peers(), n.NATStatus())
	}
	res.Blocks = 1
	var links []cid.Cid
	for _, l := range rootNode.Links() {
		links = append(links, l.Cid)
	}
	for opt := range n.DAGService().GetMany(fctx, links) {
		if opt.Err != nil {
			t.Fatalf("fetch shard: %v", opt.Err)
		}
		res.Blocks++
	}
	res.Fetched = time.Since(begin)
	// Bitswap only moves blocks over direct connections, so one exists.
	select {
	case <-w.direct:
	case <-time.After(10 * time.Second):
	}
	st := n.NATStatus()
	res.Reach, res.RelayAddrs, res.ObservedOK = st.Reachability, len(st.RelayAddrs), len(st.PublicAddrs) > 0
	res.Connected, res.Direct, res.FirstRelay = w.result()
	res.Root = root.String()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "fetcher.json", string(b))
	for {
		if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatal(errors.New("stopped before the test said stop"))
		}
		time.Sleep(100 * time.Millisecond) // polling the stop file
	}
}
