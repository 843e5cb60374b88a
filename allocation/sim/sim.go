package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/pinfold/pinfold/allocation"
)

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("sim: invalid config")

// Config describes a synthetic cluster.
type Config struct {
	Members        int     `json:"members"`         // admitted members
	Shards         int     `json:"shards"`          // shards in the archive
	Replication    int     `json:"replication"`     // replication maximum
	MinReplication int     `json:"min_replication"` // replication minimum; 0 means Replication
	Seed           int64   `json:"seed"`            // seeds every random choice; printed in the report
	Fill           float64 `json:"fill"`            // stored bytes at full replication / pledged bytes
	Epsilon        float64 `json:"epsilon"`         // load bound over the mean fill
	MedianPledge   int64   `json:"median_pledge"`   // bytes
	Spread         float64 `json:"spread"`          // ratio of the 99th to the 1st percentile pledge (log-normal)
	Domains        int     `json:"domains"`         // failure domains; 0 for none
	AlgVer         int64   `json:"alg_version"`     // algorithm version to measure; 0 means allocation.Version
}

// DefaultConfig is the reference cluster: 1,000 members with
// log-normal pledges (median 1 TiB, 100x spread between the 1st and 99th
// percentile), 100,000 shards, replication 3, 70 % full, epsilon 5 %.
func DefaultConfig() Config {
	return Config{
		Members:      1000,
		Shards:       100_000,
		Replication:  3,
		Seed:         1,
		Fill:         0.7,
		Epsilon:      0.05,
		MedianPledge: 1 << 40,
		Spread:       100,
	}
}

// Validate reports the first invalid field; it changes nothing.
func (c Config) Validate() error {
	switch {
	case c.Members < 2 || c.Members > allocation.MaxMembers:
		return fmt.Errorf("%w: sim.members must be in [2, %d], got %d", ErrInvalidConfig, allocation.MaxMembers, c.Members)
	case c.Shards < 1 || c.Shards > allocation.MaxShards:
		return fmt.Errorf("%w: sim.shards must be in [1, %d], got %d", ErrInvalidConfig, allocation.MaxShards, c.Shards)
	case c.Replication < 1 || c.Replication > allocation.MaxRepl:
		return fmt.Errorf("%w: sim.replication must be in [1, %d], got %d", ErrInvalidConfig, allocation.MaxRepl, c.Replication)
	case c.MinReplication < 0 || c.MinReplication > c.Replication:
		return fmt.Errorf("%w: sim.min_replication must be in [0, replication], got %d", ErrInvalidConfig, c.MinReplication)
	case !(c.Fill > 0 && c.Fill <= 1):
		return fmt.Errorf("%w: sim.fill must be in (0, 1], got %v", ErrInvalidConfig, c.Fill)
	case !(c.Epsilon >= 0 && c.Epsilon <= 1):
		return fmt.Errorf("%w: sim.epsilon must be in [0, 1], got %v", ErrInvalidConfig, c.Epsilon)
	case c.MedianPledge <= 0 || c.MedianPledge > allocation.MaxCapacity/int64(max(c.Members, 1))/100:
		return fmt.Errorf("%w: sim.median_pledge out of range: %d", ErrInvalidConfig, c.MedianPledge)
	case !(c.Spread >= 1 && c.Spread <= 1e6):
		return fmt.Errorf("%w: sim.spread must be in [1, 1e6], got %v", ErrInvalidConfig, c.Spread)
	case c.Domains < 0:
		return fmt.Errorf("%w: sim.domains must be >= 0, got %d", ErrInvalidConfig, c.Domains)
	case c.AlgVer < 0 || c.AlgVer > allocation.Version:
		return fmt.Errorf("%w: sim.alg_version must be in [0, %d], got %d", ErrInvalidConfig, allocation.Version, c.AlgVer)
	}
	return nil
}

// version returns the algorithm version the config measures.
func (c Config) version() int64 {
	if c.AlgVer == 0 {
		return allocation.Version
	}
	return c.AlgVer
}

// Event is one membership change and the bytes it moved.
type Event struct {
	Name       string  `json:"name"`
	Moved      int64   `json:"moved_bytes"`
	LowerBound int64   `json:"lower_bound_bytes"` // see docs/allocation.md
	Ratio      float64 `json:"ratio"`             // Moved / LowerBound; 0 when the bound is 0
	Balance    float64 `json:"balance"`           // max fill / mean fill after the event
	BelowMin   int     `json:"below_min"`         // shards below min after the event
	Note       string  `json:"note,omitempty"`
}

// Report is what Run measured.
type Report struct {
	Config     Config           `json:"config"`
	Algorithm  string           `json:"algorithm"`
	AlgVer     int64            `json:"alg_version"`
	Stats      allocation.Stats `json:"stats"`
	ShardBytes int64            `json:"mean_shard_bytes"`
	Compute    time.Duration    `json:"compute_ns"`   // one Compute of the base cluster
	NsPerShard float64          `json:"ns_per_shard"` // Compute / Shards
	Allocs     uint64           `json:"allocs"`       // heap allocations of that Compute
	AllocBytes uint64           `json:"alloc_bytes"`  // bytes allocated by that Compute
	Events     []Event          `json:"events"`
	Total      time.Duration    `json:"total_ns"` // the whole Run
}

// Run builds the cluster described by cfg, computes its allocation, then
// applies each event (a join, the leave of the median and of the largest
// member, a pledge change and an offline member) to the base cluster and
// measures the bytes moved against the lower bound. All randomness comes
// from cfg.Seed; Run checks ctx between computations.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	start := time.Now()
	rep := Report{Config: cfg, Algorithm: allocation.Algorithm, AlgVer: cfg.version()}
	in := build(cfg)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	base, err := allocation.Compute(in)
	if err != nil {
		return rep, fmt.Errorf("compute base: %w", err)
	}
	rep.Compute = time.Since(t0)
	runtime.ReadMemStats(&ms1)
	rep.Allocs = ms1.Mallocs - ms0.Mallocs
	rep.AllocBytes = ms1.TotalAlloc - ms0.TotalAlloc
	rep.NsPerShard = float64(rep.Compute.Nanoseconds()) / float64(cfg.Shards)
	rep.Stats = base.Stats()
	var sb int64
	for _, s := range in.Shards {
		sb += s.Bytes
	}
	rep.ShardBytes = sb / int64(len(in.Shards))

	loads := base.Members()
	byCap := make([]int, len(loads))
	for i := range byCap {
		byCap[i] = i
	}
	slices.SortStableFunc(byCap, func(a, b int) int { return cmpInt(loads[a].Capacity, loads[b].Capacity) })
	median, largest := byCap[len(byCap)/2], byCap[len(byCap)-1]
	stored := rep.Stats.Stored
	capTotal := rep.Stats.Capacity

	events := []struct {
		name   string
		change func(in allocation.Input) allocation.Input
		bound  func() (int64, string)
	}{
		{"join", func(in allocation.Input) allocation.Input {
			in.Members = append(slices.Clone(in.Members), allocation.Member{Peer: peerID(cfg.Seed, -1), Capacity: cfg.MedianPledge})
			return in
		}, func() (int64, string) {
			return share(stored, cfg.MedianPledge, capTotal+cfg.MedianPledge), "bound: the joiner's proportional share"
		}},
		{"leave median", func(in allocation.Input) allocation.Input { return without(in, loads[median].Peer) },
			func() (int64, string) { return loads[median].Bytes, "bound: the bytes it held" }},
		{"leave largest", func(in allocation.Input) allocation.Input { return without(in, loads[largest].Peer) },
			func() (int64, string) { return loads[largest].Bytes, "bound: the bytes it held" }},
		{"pledge x2 median", func(in allocation.Input) allocation.Input {
			return edit(in, loads[median].Peer, func(m *allocation.Member) { m.Capacity *= 2 })
		}, func() (int64, string) {
			c := loads[median].Capacity * 2
			return max(0, share(stored, c, capTotal+c/2)-loads[median].Bytes), "bound: its new share minus what it held"
		}},
		{"offline median", func(in allocation.Input) allocation.Input {
			seq := int64(1)
			return edit(in, loads[median].Peer, func(m *allocation.Member) { m.Offline = &seq })
		}, func() (int64, string) {
			return belowMinIfLost(base, loads[median].Peer), "bound: its shards left below min live holders"
		}},
	}
	for _, ev := range events {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		after, err := allocation.Compute(ev.change(in))
		if err != nil {
			return rep, fmt.Errorf("compute %s: %w", ev.name, err)
		}
		st := after.Stats()
		lb, note := ev.bound()
		e := Event{Name: ev.name, Moved: allocation.Moved(base, after), LowerBound: lb,
			Balance: st.Balance, BelowMin: st.BelowMin, Note: note}
		if lb > 0 {
			e.Ratio = float64(e.Moved) / float64(lb)
		}
		rep.Events = append(rep.Events, e)
	}
	rep.Total = time.Since(start)
	return rep, nil
}

// share returns stored * c / total, the bytes a member of capacity c holds
// when every member is filled exactly to the mean.
func share(stored, c, total int64) int64 {
	return int64(math.Round(float64(stored) * float64(c) / float64(total)))
}

// belowMinIfLost sums the bytes of peer's shards whose live holders would
// fall below their minimum without it.
func belowMinIfLost(p *allocation.Plan, peer []byte) int64 {
	var sum int64
	for i := range p.Len() {
		sh := p.Shard(i)
		if !slices.ContainsFunc(sh.Holders, func(h []byte) bool { return string(h) == string(peer) }) {
			continue
		}
		if len(sh.Holders)-1 < sh.Min {
			sum += sh.Bytes
		}
	}
	return sum
}

func without(in allocation.Input, peer []byte) allocation.Input {
	in.Members = slices.DeleteFunc(slices.Clone(in.Members), func(m allocation.Member) bool { return string(m.Peer) == string(peer) })
	return in
}

func edit(in allocation.Input, peer []byte, f func(*allocation.Member)) allocation.Input {
	in.Members = slices.Clone(in.Members)
	for i := range in.Members {
		if string(in.Members[i].Peer) == string(peer) {
			f(&in.Members[i])
		}
	}
	return in
}

// build makes the synthetic cluster of cfg.
func build(cfg Config) allocation.Input {
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x70696e666f6c64))
	sigma := math.Log(cfg.Spread) / (2 * 2.3263478740408408) // z of the 99th percentile
	in := allocation.Input{
		Algorithm: allocation.Algorithm,
		AlgVer:    cfg.version(),
		Params: allocation.Params{
			ReplMin:     int64(cmp0(cfg.MinReplication, cfg.Replication)),
			ReplMax:     int64(cfg.Replication),
			ShardTarget: allocation.DefaultTarget(nil, 0, 0),
			Epsilon:     int64(math.Round(cfg.Epsilon * 1e6)),
		},
	}
	var capTotal float64
	for i := range cfg.Members {
		c := int64(float64(cfg.MedianPledge) * math.Exp(sigma*rng.NormFloat64()))
		m := allocation.Member{Peer: peerID(cfg.Seed, i), Capacity: max(c, 1)}
		if cfg.Domains > 0 {
			m.Domain = fmt.Sprintf("d%03d", rng.IntN(cfg.Domains))
		}
		capTotal += float64(m.Capacity)
		in.Members = append(in.Members, m)
	}
	// shard sizes vary like a packer's output: most close to the target
	xs := make([]float64, cfg.Shards)
	var sum float64
	for i := range xs {
		xs[i] = 0.85 + 0.15*rng.Float64()
		sum += xs[i]
	}
	scale := cfg.Fill * capTotal / float64(cfg.Replication) / sum
	in.Params.ShardTarget = int64(scale)
	for i, x := range xs {
		in.Shards = append(in.Shards, allocation.Shard{ID: int64(i), Bytes: int64(x * scale), Pins: 1 + rng.Int64N(1000)})
	}
	return in
}

// peerID returns a deterministic stand-in for a binary peer ID: the
// identity-multihash prefix of an ed25519 key followed by 32 seeded bytes.
func peerID(seed int64, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed)^0x9e3779b97f4a7c15, uint64(int64(i))))
	b := []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}
	for range 4 {
		v := r.Uint64()
		for k := range 8 {
			b = append(b, byte(v>>(8*k)))
		}
	}
	return b
}

func cmp0(a, b int) int {
	if a == 0 {
		return b
	}
	return a
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// WriteText writes the report for people.
func (r Report) WriteText(w io.Writer) error {
	c := r.Config
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "algorithm\t%s v%d\n", r.Algorithm, r.AlgVer)
	fmt.Fprintf(tw, "cluster\t%d members, %d shards, replication %d..%d, seed %d\n",
		c.Members, c.Shards, cmp0(c.MinReplication, c.Replication), c.Replication, c.Seed)
	fmt.Fprintf(tw, "pledges\tlog-normal, median %s, p99/p1 %.0fx, total %s\n", size(c.MedianPledge), c.Spread, size(r.Stats.Capacity))
	fmt.Fprintf(tw, "shards\tmean %s, stored %s (%d copies)\n", size(r.ShardBytes), size(r.Stats.Stored), r.Stats.Replicas)
	fmt.Fprintf(tw, "balance\tmax fill %.4f / mean fill %.4f = %.4f (epsilon %.3f)\n", r.Stats.MaxFill, r.Stats.MeanFill, r.Stats.Balance, c.Epsilon)
	fmt.Fprintf(tw, "below min\t%d shards; %d members over their pledge\n", r.Stats.BelowMin, r.Stats.Overfull)
	fmt.Fprintf(tw, "compute\t%v (%.0f ns/shard, %d allocs, %s allocated)\n", r.Compute.Round(time.Millisecond), r.NsPerShard, r.Allocs, size(int64(r.AllocBytes)))
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "event\tmoved\tlower bound\tratio\tbalance\tbelow min\t")
	for _, e := range r.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.4f\t%d\t%s\n", e.Name, size(e.Moved), size(e.LowerBound), e.Ratio, e.Balance, e.BelowMin, e.Note)
	}
	fmt.Fprintf(tw, "\ntotal time\t%v\n", r.Total.Round(time.Millisecond))
	return tw.Flush()
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func size(b int64) string {
	const unit = 1024
	f := float64(b)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"} {
		if math.Abs(f) < unit || u == "PiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", b)
			}
			return fmt.Sprintf("%.2f %s", f, u)
		}
		f /= unit
	}
	return ""
}
