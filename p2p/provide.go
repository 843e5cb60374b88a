package p2p

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dssync "github.com/ipfs/go-datastore/sync"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/provider"
	"github.com/libp2p/go-libp2p-kad-dht/provider/keystore"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// ProvideConfig tunes how the node announces the roots it holds (provider
// records) in the DHTs it runs. Announcing uses kad-dht's sweeping
// provider: keys are kept in a keystore sorted by their place in the
// keyspace, and each reprovide walks one keyspace region at a time,
// sending every record of that region to its closest peers in one go, so
// the cost grows with the number of regions (about the number of DHT
// servers), not with one lookup per key.
type ProvideConfig struct {
	// Interval is the time between two announcements of one root; DHT
	// servers drop provider records after 48 h. Default: 22h.
	Interval time.Duration
	// Workers bounds the regions announced at once. Default: 4.
	Workers int
}

// DefaultProvideConfig returns the announcement defaults.
func DefaultProvideConfig() ProvideConfig {
	return ProvideConfig{Interval: 22 * time.Hour, Workers: 4}
}

func (c *ProvideConfig) validate() error {
	switch {
	case c.Interval < time.Minute || c.Interval > 47*time.Hour:
		return invalid("provide.interval", "is %s; want 1m to 47h (DHT servers forget records after 48h)", c.Interval)
	case c.Workers < 2 || c.Workers > 64:
		return invalid("provide.workers", "is %d; want 2 to 64", c.Workers)
	}
	return nil
}

// providers announce keys in each DHT the node runs.
type providers struct {
	each  []*provider.SweepingProvider
	close []func() error
}

// newProviders starts one sweeping provider per DHT in dhts (nil ones are
// skipped), each with its own keystore in store (in memory when store is
// nil): a provider announces at once only the keys its keystore did not
// hold yet. Nothing starts when every DHT is nil.
func newProviders(store ds.Batching, cfg ProvideConfig, dhts map[string]*dht.IpfsDHT) (*providers, error) {
	p := &providers{}
	if dhts["cluster"] == nil && dhts["dht"] == nil {
		return p, nil
	}
	if store == nil {
		m := dssync.MutexWrap(ds.NewMapDatastore())
		store = m
		p.close = append(p.close, m.Close)
	}
	for _, name := range []string{"cluster", "dht"} {
		d := dhts[name]
		if d == nil {
			continue
		}
		keys, err := keystore.NewKeystore(namespace.Wrap(store, ds.NewKey("/provide/"+name+"/keys")))
		if err != nil {
			_ = p.stop()
			return nil, fmt.Errorf("p2p: %s provider keystore: %w", name, err)
		}
		p.close = append(p.close, keys.Close)
		sp, err := provider.New(
			provider.WithHost(d.Host()),
			provider.WithRouter(d),
			provider.WithMessageSender(d.MessageSender()),
			provider.WithSelfAddrs(d.FilteredAddrs),
			provider.WithReplicationFactor(d.BucketSize()),
			provider.WithAddLocalRecord(func(ctx context.Context, h mh.Multihash) error {
				return d.Provide(ctx, cid.NewCidV1(cid.Raw, h), false)
			}),
			provider.WithKeystore(keys),
			provider.WithDatastore(namespace.Wrap(store, ds.NewKey("/provide/"+name+"/state"))),
			provider.WithReprovideInterval(cfg.Interval),
			provider.WithMaxWorkers(cfg.Workers),
			provider.WithDedicatedPeriodicWorkers(1),
			provider.WithDedicatedBurstWorkers(1),
			provider.WithLoggerName("pinfold-provide-"+name),
			provider.WithDhtType(name),
		)
		if err != nil {
			_ = p.stop()
			return nil, fmt.Errorf("p2p: start %s provider: %w", name, err)
		}
		p.each = append(p.each, sp)
	}
	return p, nil
}

func (p *providers) stop() error {
	var errs []error
	for _, sp := range p.each {
		errs = append(errs, sp.Close())
	}
	for i := len(p.close) - 1; i >= 0; i-- {
		errs = append(errs, p.close[i]())
	}
	return errors.Join(errs...)
}

func multihashes(cids []cid.Cid) []mh.Multihash {
	out := make([]mh.Multihash, len(cids))
	for i, c := range cids {
		out[i] = c.Hash()
	}
	return out
}

// Providing reports whether Provide announces anything (a DHT is on).
func (n *Node) Providing() bool { return len(n.prov.each) > 0 }

// Provide adds roots to the keys the node announces: new ones are
// announced soon (batched by keyspace region), then again every
// ProvideConfig.Interval until StopProviding. Records name the
// multihash, so any CID version of the same bytes finds them. It returns
// at once; announcing goes on in the background. It is a no-op when no
// DHT runs.
func (n *Node) Provide(roots ...cid.Cid) error {
	if n.isClosed() {
		return ErrClosed
	}
	keys := multihashes(roots)
	for _, sp := range n.prov.each {
		if err := sp.StartProviding(false, keys...); err != nil {
			return fmt.Errorf("p2p: provide %d roots: %w", len(roots), err)
		}
	}
	return nil
}

// StopProviding stops announcing roots (records already sent expire on
// their own).
func (n *Node) StopProviding(roots ...cid.Cid) error {
	if n.isClosed() {
		return ErrClosed
	}
	keys := multihashes(roots)
	for _, sp := range n.prov.each {
		if err := sp.StopProviding(keys...); err != nil {
			return fmt.Errorf("p2p: stop providing %d roots: %w", len(roots), err)
		}
	}
	return nil
}

// ProvideStatus sums up the announcements in one DHT.
type ProvideStatus struct {
	DHT string // "cluster" or "dht"
	// Keys is how many roots are announced; Pending how many wait for
	// their first announcement.
	Keys, Pending int64
	// Provided and Failed count the keys announced and the announcements
	// that reached no peer, since start.
	Provided, Failed int64
	// Online is false while the provider cannot reach DHT peers.
	Online bool
	// NextReprovide is when the next keyspace region is due.
	NextReprovide time.Time
}

// ProvideStatus returns one entry per DHT the node announces in.
func (n *Node) ProvideStatus(ctx context.Context) ([]ProvideStatus, error) {
	var out []ProvideStatus
	names := n.provNames()
	for i, sp := range n.prov.each {
		st, err := sp.Stats(ctx)
		if err != nil {
			return nil, fmt.Errorf("p2p: provider stats: %w", err)
		}
		out = append(out, ProvideStatus{
			DHT:           names[i],
			Keys:          st.Schedule.Keys,
			Pending:       st.Queues.PendingKeyProvides,
			Provided:      st.Operations.Past.KeysProvided,
			Failed:        st.Operations.Past.KeysFailed,
			Online:        st.Connectivity.Status == "online",
			NextReprovide: st.Schedule.NextReprovideAt,
		})
	}
	return out, nil
}

func (n *Node) provNames() []string {
	var names []string
	if n.cdht != nil {
		names = append(names, "cluster")
	}
	if n.dht != nil {
		names = append(names, "dht")
	}
	return names
}

// FindProviders asks the cluster DHT (or, when it is off, the other DHT)
// for up to max holders of c.
func (n *Node) FindProviders(ctx context.Context, c cid.Cid, max int) ([]peer.AddrInfo, error) {
	d := n.cdht
	if d == nil {
		d = n.dht
	}
	if d == nil {
		return nil, ErrDHTDisabled
	}
	var out []peer.AddrInfo
	for ai := range d.FindProvidersAsync(ctx, c, max) {
		out = append(out, ai)
	}
	if len(out) == 0 && ctx.Err() != nil {
		return nil, fmt.Errorf("p2p: find providers of %s: %w", c, ctx.Err())
	}
	return out, nil
}

// ClusterDHTEnabled reports whether the node runs the cluster DHT.
func (n *Node) ClusterDHTEnabled() bool { return n.cdht != nil }

// ClusterDHTPeers returns how many peers are in the cluster DHT's routing
// table (0 when it is off).
func (n *Node) ClusterDHTPeers() int {
	if n.cdht == nil {
		return 0
	}
	return n.cdht.RoutingTable().Size()
}

// basicBatches gives kad-dht's stores batches that gather their writes in
// memory and apply them one by one on Commit (go-datastore's basic batch)
// instead of the datastore's own. kad-dht's keystore leaves some batches
// neither committed nor cancelled (emptying an empty keystore, an error
// midway), and go-ds-badger4 logs "batch not committed or canceled" at
// ERROR for each such write batch it finalizes.
type basicBatches struct{ ds.Datastore }

func (b basicBatches) Batch(context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(b.Datastore), nil
}
