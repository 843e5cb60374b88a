// Command manyfollowers measures what many followers cost a running
// curator: it starts light followers (localcluster.LightFollower: real
// libp2p hosts that verify heads, compute their assignment, and send
// signed offers and ACKs) in this process, in steps, against a curator
// daemon in another process, and prints for each step the time from
// publish to verified, the curator's CPU and memory, head sizes and the
// ACK log. scripts/measure-followers.sh runs it against a fresh curator.
//
//	manyfollowers -curator HOME -cluster cluster.json -steps 50,100,200
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // -pprof
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/trust"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manyfollowers:", err)
		os.Exit(1)
	}
}

type adoption struct {
	seq int64
	at  time.Time
}

// bench is the measurement's state.
type bench struct {
	client  *curator.Client
	api     string
	cluster configs.Cluster
	heads   int
	window  time.Duration
	offerIv time.Duration
	ackIv   time.Duration

	mu        sync.Mutex
	followers []*localcluster.LightFollower
	adopted   map[int][]adoption  // follower index -> adoptions in order
	signedAt  map[int64]time.Time // head seq -> the time its curator signed in it
	stops     []func()
}

func run() error {
	home := flag.String("curator", "", "the curator's home folder (its daemon must be running)")
	clusterPath := flag.String("cluster", "", "the cluster config (curate export-config)")
	stepsFlag := flag.String("steps", "50,100,200", "follower counts to measure at, ascending")
	heads := flag.Int("heads", 5, "heads published (forced) per step to time publish -> verified")
	window := flag.Duration("window", time.Minute, "length of the steady-state (offers only) window per step")
	offerIv := flag.Duration("offer-interval", 20*time.Second, "followers' offer interval")
	ackIv := flag.Duration("ack-interval", 10*time.Minute, "followers' ACK interval")
	pins := flag.Int("pins", 2000, "pins added before the first step (64 MiB each unless -pin-size)")
	pinSize := flag.Int64("pin-size", 64<<20, "claimed size of each pin, bytes")
	flag.DurationVar(&settleFor, "settle", settleFor, "longest wait for a step's cluster to quiesce")
	pprofAddr := flag.String("pprof", "", "serve this process's runtime profiles on this host:port (e.g. 127.0.0.1:14122)")
	flag.Parse()
	if *pprofAddr != "" {
		srv := &http.Server{Addr: *pprofAddr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go func() { // lives as long as the process: a measurement tool's profile endpoint
			if err := srv.ListenAndServe(); err != nil {
				fmt.Fprintln(os.Stderr, "pprof:", err)
			}
		}()
		defer srv.Close()
	}
	var steps []int
	for _, s := range strings.Split(*stepsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || (len(steps) > 0 && n <= steps[len(steps)-1]) {
			return fmt.Errorf("-steps: %q is not an ascending list of counts", *stepsFlag)
		}
		steps = append(steps, n)
	}
	l, err := curator.Home{Dir: *home}.Load()
	if err != nil {
		return err
	}
	var cl configs.Cluster
	if err := configs.Load(*clusterPath, &cl); err != nil {
		return err
	}
	client := curator.NewClient(l)
	client.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	b := &bench{client: client, api: l.Config.API, cluster: cl, heads: *heads, window: *window,
		offerIv: *offerIv, ackIv: *ackIv, adopted: map[int][]adoption{}, signedAt: map[int64]time.Time{}}
	defer b.stop()
	ctx := context.Background()
	if err := b.addPins(ctx, 0, *pins, *pinSize); err != nil {
		return err
	}
	fmt.Printf("curator: %d pins of %d bytes; offer interval %s, ack interval %s\n", *pins, *pinSize, *offerIv, *ackIv)
	base, err := b.metrics(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("curator before followers: rss %.1f MiB, heap in use %.1f MiB\n", base.rss/(1<<20), base.heap/(1<<20))
	next := *pins
	for _, n := range steps {
		if err := b.step(ctx, n, &next, *pinSize); err != nil {
			return fmt.Errorf("step %d: %w", n, err)
		}
	}
	return nil
}

func (b *bench) addPins(ctx context.Context, from, n int, size int64) error {
	for lo := from; lo < from+n; lo += 1000 {
		var reqs []curator.PinRequest
		for i := lo; i < min(lo+1000, from+n); i++ {
			c := dag.CID([]byte(fmt.Sprintf("many followers pin %d", i)))
			reqs = append(reqs, curator.PinRequest{CID: c.String(), Name: fmt.Sprintf("file-%d", i), Size: size})
		}
		if _, err := b.client.AddPins(ctx, reqs); err != nil {
			return fmt.Errorf("add pins: %w", err)
		}
	}
	return nil
}

func (b *bench) stop() {
	b.mu.Lock()
	stops := b.stops
	b.stops = nil
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range stops {
		wg.Add(1)
		go func() { defer wg.Done(); s() }()
	}
	wg.Wait()
}

// grow starts light followers until there are n.
func (b *bench) grow(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		i := len(b.followers)
		b.mu.Unlock()
		if i >= n {
			return nil
		}
		f, err := localcluster.StartLight(ctx, localcluster.LightOptions{
			Cluster: b.cluster, Nickname: fmt.Sprintf("light-%d", i), Capacity: 100 << 30,
			OfferInterval: b.offerIv, AckInterval: b.ackIv,
			OnVerified: func(v trust.Verified, at time.Time) {
				b.mu.Lock()
				b.adopted[i] = append(b.adopted[i], adoption{v.Head.Seq, at})
				b.signedAt[v.Head.Seq] = time.UnixMilli(v.Head.Time)
				b.mu.Unlock()
			},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { // owned by the bench: stop cancels and waits
			defer close(done)
			if err := f.Run(rctx); err != nil {
				fmt.Fprintln(os.Stderr, "light follower", i, "stopped:", err)
			}
		}()
		b.mu.Lock()
		b.followers = append(b.followers, f)
		b.stops = append(b.stops, func() { cancel(); <-done; f.Close() })
		b.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // spread the dials a little
	}
}

// droppedRPCs is the outbound gossipsub RPCs the followers dropped for
// full send queues, in all.
func (b *bench) droppedRPCs() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n uint64
	for _, f := range b.followers {
		n += f.Node.DroppedRPCs()
	}
	return n
}

// reached returns, for each follower, the first time it had verified a
// head of seq >= s (zero if it has not).
func (b *bench) reached(s int64) []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]time.Time, len(b.followers))
	for i := range b.followers {
		for _, a := range b.adopted[i] {
			if a.seq >= s {
				out[i] = a.at
				break
			}
		}
	}
	return out
}

// count returns how many followers reached a head.
func count(ts []time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.IsZero() {
			n++
		}
	}
	return n
}

// need is how many of n followers a step waits for: all but 5 % (a
// follower whose gossipsub stream to the curator failed to open hears
// nothing until it reconnects; the figures say how many).
func need(n int) int { return n - n/20 }

// kinds sums the followers' ACKs by why they were sent.
func (b *bench) kinds() (beat, fresh, resent int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.followers {
		x, y, z := f.AckKinds()
		beat, fresh, resent = beat+x, fresh+y, resent+z
	}
	return
}

func (b *bench) sent() (offers, acks, batches int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.followers {
		o, a, n := f.Sent()
		offers, acks, batches = offers+o, acks+a, batches+n
	}
	return
}

// settle waits until the curator lists n members in its newest head, has
// no ACKs pending, every follower verified that head, and for quiet no
// follower sent an ACK and no head was published.
func (b *bench) settle(ctx context.Context, n int, quiet, timeout time.Duration) (curator.Status, error) {
	deadline := time.Now().Add(timeout)
	var last int64 = -1
	lastChange := time.Now()
	report := time.Now()
	for {
		st, err := b.client.Status(ctx)
		if err != nil { // a busy curator may drop a request: ask again
			if time.Now().After(deadline) {
				return st, err
			}
			time.Sleep(time.Second)
			continue
		}
		_, acks, _ := b.sent()
		if st.Head != nil && acks+st.Head.Seq != last { // an ACK sent or a head published
			last, lastChange = acks+st.Head.Seq, time.Now()
		}
		if st.Head != nil && st.Members >= need(n) && st.PendingLog == 0 && count(b.reached(st.Head.Seq)) >= need(n) && time.Since(lastChange) >= quiet {
			return st, nil
		}
		if time.Since(report) >= 30*time.Second {
			report = time.Now()
			fmt.Printf("  settling: %d members in the head, %d ACKs pending, head seq %d; %s\n", st.Members, st.PendingLog, st.Head.Seq, b.lagging(st))
		}
		if time.Now().After(deadline) {
			if st.Head == nil || st.Members < need(n) {
				return st, fmt.Errorf("not settled after %s: %d members in the head (want %d), %d ACKs pending, head seq %v; %s", timeout, st.Members, n, st.PendingLog, st.Head, b.lagging(st))
			}
			fmt.Printf("  not quiet after %s (heads and ACKs still flowing), measuring anyway: %s\n", timeout, b.lagging(st))
			return st, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// lagging describes the followers that have not verified st's head: how
// many, how many of them are connected to a curator, and the bitswap
// penalties all followers gave.
func (b *bench) lagging(st curator.Status) string {
	if st.Head == nil {
		return "no head"
	}
	ts := b.reached(st.Head.Seq)
	b.mu.Lock()
	defer b.mu.Unlock()
	behind, connected := 0, 0
	penalties := map[string]uint64{}
	for i, f := range b.followers {
		for k, v := range f.Node.BitswapPenaltyCounts() {
			penalties[k] += v
		}
		if !ts[i].IsZero() {
			continue
		}
		behind++
		for _, c := range st.Curators {
			if id, err := peer.Decode(c); err == nil && f.Node.ConnectedTo(id) {
				connected++
				break
			}
		}
	}
	return fmt.Sprintf("%d followers behind (%d of them connected to a curator); bitswap penalties given by followers: %v", behind, connected, penalties)
}

// settleFor bounds the wait for a step's cluster to quiesce.
var settleFor = 3 * time.Minute

type sample struct {
	cpu, rss, heap, dropped float64
	at                      time.Time
}

// metrics reads the curator's process metrics from its /metrics.
func (b *bench) metrics(ctx context.Context) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.api+"/metrics", nil)
	if err != nil {
		return sample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, fmt.Errorf("curator metrics: %w", err)
	}
	defer resp.Body.Close()
	s := sample{at: time.Now()}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_cpu_seconds_total":
			s.cpu = v
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_memstats_heap_inuse_bytes":
			s.heap = v
		case "pinfold_p2p_pubsub_dropped_rpcs_total":
			s.dropped = v
		}
	}
	return s, sc.Err()
}

func (b *bench) step(ctx context.Context, n int, nextPin *int, pinSize int64) error {
	t0 := time.Now()
	if err := b.grow(ctx, n); err != nil {
		return err
	}
	st, err := b.settle(ctx, n, 15*time.Second, settleFor)
	if err != nil {
		return err
	}
	fmt.Printf("\n== %d followers (joined and settled in %.1f s; head seq %d, %d shards)\n", n, time.Since(t0).Seconds(), st.Head.Seq, st.Shards)

	// Steady state: offers at their interval, nothing else to do.
	m0, err := b.metrics(ctx)
	if err != nil {
		return err
	}
	o0, _, _ := b.sent()
	time.Sleep(b.window)
	m1, err := b.metrics(ctx)
	if err != nil {
		return err
	}
	o1, _, _ := b.sent()
	st1, err := b.status(ctx)
	if err != nil {
		return err
	}
	cpu := m1.cpu - m0.cpu
	secs := m1.at.Sub(m0.at).Seconds()
	fmt.Printf("steady state %.0f s: %d offers (%.1f/s), curator CPU %.2f s (%.1f%% of a core), %.3f ms per offer, heads published %d\n",
		secs, o1-o0, float64(o1-o0)/secs, cpu, 100*cpu/secs, 1000*cpu/float64(max(o1-o0, 1)), st1.Head.Seq-st.Head.Seq)
	fmt.Printf("curator memory: rss %.1f MiB, heap in use %.1f MiB; a signed offer is %d B\n", m1.rss/(1<<20), m1.heap/(1<<20), b.followers[0].OfferSize())

	// Publish -> verified, over forced heads that change nothing else.
	var lat, fromSigned, build []time.Duration
	missed := 0
	h0, err := b.metrics(ctx)
	if err != nil {
		return err
	}
	fd0 := b.droppedRPCs()
	for range b.heads {
		p0 := time.Now()
		if err := b.publish(ctx); err != nil {
			return err
		}
		build = append(build, time.Since(p0))
		s, err := b.status(ctx)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(60 * time.Second)
		ts := b.reached(s.Head.Seq)
		for ; count(ts) < len(ts) && time.Now().Before(deadline); ts = b.reached(s.Head.Seq) {
			time.Sleep(20 * time.Millisecond)
		}
		b.mu.Lock()
		signed := b.signedAt[s.Head.Seq]
		b.mu.Unlock()
		for _, t := range ts {
			if t.IsZero() {
				missed++
				continue
			}
			lat = append(lat, t.Sub(p0))
			if !signed.IsZero() {
				fromSigned = append(fromSigned, t.Sub(signed))
			}
		}
		time.Sleep(time.Second)
	}
	h1, err := b.metrics(ctx)
	if err != nil {
		return err
	}
	slices.Sort(lat)
	slices.Sort(build)
	fmt.Printf("forced heads: curator CPU %.2f s per head (1 s pauses included); gossipsub RPCs dropped for full send queues: curator %.0f, followers %d\n",
		(h1.cpu-h0.cpu)/float64(b.heads), h1.dropped-h0.dropped, b.droppedRPCs()-fd0)
	if len(lat) == 0 {
		return fmt.Errorf("no follower verified a forced head within 60 s")
	}
	fmt.Printf("publish -> verified over %d heads x %d followers: p50 %s p99 %s max %s (curator publish call: median %s); not verified within 60 s: %d\n",
		b.heads, n, pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Millisecond), pct(build, 50), missed)
	// The call above includes this process's own delay in making the
	// request, which grows with the followers it runs; the curator signs
	// the head's time when it builds it (the same clock: one machine).
	slices.Sort(fromSigned)
	if len(fromSigned) > 0 {
		fmt.Printf("head signed -> verified: p50 %s p99 %s max %s\n",
			pct(fromSigned, 50), pct(fromSigned, 99), fromSigned[len(fromSigned)-1].Round(time.Millisecond))
		within := 0
		for _, d := range fromSigned {
			if d < 2*time.Second {
				within++
			}
		}
		fmt.Printf("  spread: p10 %s p25 %s p75 %s p90 %s p95 %s; within 2 s: %d of %d (%.1f %%)\n",
			pct(fromSigned, 10), pct(fromSigned, 25), pct(fromSigned, 75), pct(fromSigned, 90), pct(fromSigned, 95),
			within, len(fromSigned), 100*float64(within)/float64(len(fromSigned)))
	}

	// A new pin changes the pinset and the allocation: only the holders
	// of what changed ACK (a follower ACKs a shard when it is stored,
	// changes or becomes its own, and at its heartbeat).
	before, err := b.status(ctx)
	if err != nil {
		return err
	}
	_, a0, _ := b.sent()
	_, f0, r0 := b.kinds()
	var addErr error
	for range 3 { // the curator's API has dropped a request under this load: try again
		if addErr = b.addPins(ctx, *nextPin, 1, pinSize); addErr == nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if addErr != nil {
		fmt.Printf("new-pin round skipped: %v\n", addErr)
	} else {
		*nextPin++
		after, err := b.settle(ctx, n, 5*time.Second, 2*time.Minute)
		if err != nil {
			return err
		}
		_, a1, _ := b.sent()
		_, f1, r1 := b.kinds()
		fmt.Printf("a new pin: %d ACKs from %d followers (%d for shards newly assigned, %d sent again), heads %d..%d\n",
			a1-a0, n, f1-f0, r1-r0, before.Head.Seq+1, after.Head.Seq)
	}

	// The ACK heartbeat: every follower ACKs every shard it holds at once
	// (normally spread over ack_interval).
	before, err = b.status(ctx)
	if err != nil {
		return err
	}
	m0, err = b.metrics(ctx)
	if err != nil {
		return err
	}
	_, a0, n0 := b.sent()
	b0, f0, r0 := b.kinds()
	for _, f := range b.followers {
		f.Heartbeat()
	}
	after, err := b.settle(ctx, n, 5*time.Second, 2*time.Minute)
	if err != nil {
		return err
	}
	m1, err = b.metrics(ctx)
	if err != nil {
		return err
	}
	_, a1, n1 := b.sent()
	b1, f1, r1 := b.kinds()
	cpu = m1.cpu - m0.cpu
	fmt.Printf("ack round (every follower's heartbeat at once): %d ACKs in %d batches over %.1f s, heads %d..%d, curator CPU %.2f s, %.3f ms per ACK (with the heads recording them)\n",
		a1-a0, n1-n0, m1.at.Sub(m0.at).Seconds(), before.Head.Seq+1, after.Head.Seq, cpu, 1000*cpu/float64(max(a1-a0, 1)))
	fmt.Printf("  of them: %d heartbeats, %d for shards newly assigned, %d sent again (no head recorded them yet)\n", b1-b0, f1-f0, r1-r0)
	return b.sizes(ctx, before.Head.Seq, after.Head.Seq)
}

// status asks the curator for its status, again after a dropped request.
// publish forces a head, again after a dropped request: this process,
// running every follower, can stall past the curator's 10-s limit for a
// request header between connecting and writing, and the server then
// closes the connection unread (EOF here); nothing was published.
func (b *bench) publish(ctx context.Context) (err error) {
	for range 3 {
		if _, err = b.client.Publish(ctx, true); err == nil {
			return nil
		}
		fmt.Printf("  publish: %v (trying again)\n", err)
	}
	return err
}

func (b *bench) status(ctx context.Context) (st curator.Status, err error) {
	for range 5 {
		if st, err = b.client.Status(ctx); err == nil {
			return st, nil
		}
		time.Sleep(time.Second)
	}
	return st, err
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := min(len(d)-1, (len(d)*p+99)/100-1)
	return d[max(i, 0)].Round(time.Millisecond)
}

// sizes prints the bytes of the newest head and its lists, and the ACK
// log of the heads after from up to to.
func (b *bench) sizes(ctx context.Context, from, to int64) error {
	b.mu.Lock()
	f := b.followers[0]
	b.mu.Unlock()
	bs := f.Node.BlockService()
	get := func(c cid.Cid) ([]byte, error) {
		gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		blk, err := bs.GetBlock(gctx, c)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		return blk.RawData(), nil
	}
	list := func(c cid.Cid) (int64, int, int, error) { // items, list+chunk bytes, chunks
		raw, err := get(c)
		if err != nil {
			return 0, 0, 0, err
		}
		l, err := dag.DecodeList(raw)
		if err != nil {
			return 0, 0, 0, err
		}
		total := len(raw)
		for _, ch := range l.Chunks {
			r, err := get(ch)
			if err != nil {
				return 0, 0, 0, err
			}
			total += len(r)
		}
		return l.Count, total, len(l.Chunks), nil
	}
	v, ok := f.Heads.Newest()
	if !ok {
		return fmt.Errorf("no head")
	}
	var logEntries int64
	var logBytes int
	c := v.CID
	var headBytes, membersBytes, allocBytes, shardsBytes int
	var members, shards int64
	for {
		raw, err := get(c)
		if err != nil {
			return err
		}
		sh, err := dag.DecodeSignedHead(raw)
		if err != nil {
			return err
		}
		if sh.Head.Seq <= from {
			break
		}
		araw, err := get(sh.Head.Allocation)
		if err != nil {
			return err
		}
		alloc, err := dag.DecodeAllocation(araw)
		if err != nil {
			return err
		}
		if alloc.Log != nil {
			n, bts, _, err := list(*alloc.Log)
			if err != nil {
				return err
			}
			logEntries += n
			logBytes += bts
		}
		if c.Equals(v.CID) {
			headBytes, allocBytes = len(raw), len(araw)
			if members, membersBytes, _, err = list(sh.Head.Members); err != nil {
				return err
			}
			praw, err := get(sh.Head.Pinset)
			if err != nil {
				return err
			}
			ps, err := dag.DecodePinset(praw)
			if err != nil {
				return err
			}
			if shards, shardsBytes, _, err = list(ps.Shards); err != nil {
				return err
			}
			shardsBytes += len(praw)
		}
		if sh.Head.Parent == nil {
			break
		}
		c = *sh.Head.Parent
	}
	fmt.Printf("head seq %d: signed head %d B; members list %d B for %d members (%.0f B each); allocation %d B; pinset+shards %d B for %d shards\n",
		v.Head.Seq, headBytes, membersBytes, members, float64(membersBytes)/float64(max(members, 1)), allocBytes, shardsBytes, shards)
	fmt.Printf("ack log of heads %d..%d: %d entries, %d B (%.0f B per entry)\n", from+1, to, logEntries, logBytes, float64(logBytes)/float64(max(logEntries, 1)))
	return nil
}
