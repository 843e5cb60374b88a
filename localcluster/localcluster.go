// Package localcluster runs a whole pinfold cluster inside one process on
// 127.0.0.1: a curator daemon and any number of follower daemons, each
// with its own libp2p host, datastore and folder. The demo and the
// in-process end-to-end tests are built on it.
package localcluster

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/follower"
)

// Options shape a local cluster.
type Options struct {
	Dir     string          // every home goes under it
	Name    string          // cluster name; "demo" if empty
	Curator configs.Curator // curator config; listen and API addresses are replaced by loopback ones
	Logger  *slog.Logger    // nil discards
}

// Cluster is a running local cluster. Close stops it.
type Cluster struct {
	Dir     string
	Curator *curator.Daemon
	Home    curator.Home
	// Config is the cluster config followers join with: the curator's,
	// with its loopback addresses as bootstrap.
	Config configs.Cluster

	log       *slog.Logger
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	followers map[string]*Follower
	stopCur   context.CancelFunc // stops the curator's Run (StopCurator)
	curDone   chan struct{}      // closed when the curator's Run returned
	errs      []error
	onClose   []func() // run first by Close (DemoOptions.OnStart's detach)
}

// Follower is one running follower of a local cluster.
type Follower struct {
	Name   string
	Home   follower.Home
	Daemon *follower.Daemon
	cancel context.CancelFunc
	done   chan struct{}
}

// Start creates and starts the curator of a new local cluster.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	if opt.Name == "" {
		opt.Name = "demo"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := opt.Curator
	if cfg.Version == 0 {
		cfg = configs.DefaultCurator()
	}
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = "127.0.0.1:0"
	home := curator.Home{Dir: filepath.Join(opt.Dir, "curator")}
	if _, err := home.Init(ctx, curator.InitOptions{Name: opt.Name, Config: cfg, Now: time.Now(), Rand: rand.Reader}); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{Dir: opt.Dir, Home: home, log: opt.Logger, ctx: cctx, cancel: cancel, followers: map[string]*Follower{}}
	d, err := curator.OpenDaemon(ctx, home, curator.DaemonOptions{Logger: opt.Logger.With("node", "curator")})
	if err != nil {
		cancel()
		return nil, err
	}
	c.Curator = d
	l, err := home.Load()
	if err != nil {
		cancel()
		d.Close()
		return nil, err
	}
	c.Config = l.Cluster
	for _, a := range d.Node().Addrs() {
		c.Config.Bootstrap = append(c.Config.Bootstrap, a.String())
	}
	curCtx, stopCur := context.WithCancel(cctx)
	c.stopCur, c.curDone = stopCur, make(chan struct{})
	c.run("curator", func(context.Context) error { return d.Run(curCtx) }, c.curDone)
	return c, nil
}

// StopCurator stops and closes the curator, as if it were killed: the
// followers go on without it. Close still returns its Run's error.
func (c *Cluster) StopCurator() error {
	c.stopCur()
	<-c.curDone
	return c.Curator.Close()
}

// run runs f until the cluster (or stop) ends; its error is kept for Close.
func (c *Cluster) run(name string, f func(context.Context) error, done chan struct{}) {
	c.wg.Add(1)
	go func() { // owned by the Cluster: Close cancels c.ctx and waits
		defer c.wg.Done()
		if done != nil {
			defer close(done)
		}
		if err := f(c.ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.log.Error("daemon stopped", "node", name, "err", err)
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("%s: %w", name, err))
			c.mu.Unlock()
		}
	}()
}

// FollowerOptions shape one follower.
type FollowerOptions struct {
	Pledge   configs.Pledge
	Nickname string
	Domain   string
	// OfferInterval and AckInterval, if set, replace the default
	// heartbeat intervals.
	OfferInterval time.Duration
	AckInterval   time.Duration
	// IPFSAPI, if set, is a kubo RPC API the follower stores its shards
	// in instead of its embedded block store.
	IPFSAPI string
	// DHT, when not nil, replaces the follower's DHT section.
	DHT *configs.DHT
	// MaxUpload and MaxDownload bound its bitswap traffic (0: unlimited).
	MaxUpload, MaxDownload configs.Rate
	// DiskGuard turns the follower's disk guard on. Off by default here:
	// its reserve and allocated logs take about 400 MiB of real disk per
	// follower, too much for clusters of many followers in temp folders.
	DiskGuard bool
	// Bootstrap, if set, replaces the cluster config's bootstrap list
	// (the curator's addresses) of a new follower.
	Bootstrap []string
	// RecordFile, if set, is an IPNS record file the follower resolves
	// the newest head from at start (follow run --record).
	RecordFile string
}

// AddFollower creates (or reopens, if its folder exists) and starts a
// follower named name.
func (c *Cluster) AddFollower(ctx context.Context, name string, opt FollowerOptions) (*Follower, error) {
	root := follower.Root{Dir: filepath.Join(c.Dir, "followers")}
	home, err := root.Home(name)
	if err != nil {
		return nil, err
	}
	if _, err := home.Load(); errors.Is(err, follower.ErrNotInitialised) {
		cfg := configs.DefaultFollower()
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.API = "127.0.0.1:0"
		cfg.Storage, cfg.Nickname, cfg.Domain = opt.Pledge, opt.Nickname, opt.Domain
		cfg.IPFSAPI = opt.IPFSAPI
		if opt.DHT != nil {
			cfg.DHT = *opt.DHT
		}
		cfg.MaxUpload, cfg.MaxDownload = opt.MaxUpload, opt.MaxDownload
		cfg.DiskGuard = opt.DiskGuard
		if opt.OfferInterval > 0 {
			cfg.OfferInterval = configs.Duration(opt.OfferInterval)
		}
		if opt.AckInterval > 0 {
			cfg.AckInterval = configs.Duration(opt.AckInterval)
		}
		cluster := c.Config
		if opt.Bootstrap != nil {
			cluster.Bootstrap = opt.Bootstrap
		}
		if _, err := home.Init(cluster, cfg, rand.Reader); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	d, err := follower.OpenDaemon(ctx, home, follower.DaemonOptions{Logger: c.log.With("node", name), RecordFile: opt.RecordFile})
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(c.ctx)
	f := &Follower{Name: name, Home: home, Daemon: d, cancel: cancel, done: make(chan struct{})}
	c.run(name, func(context.Context) error { return d.Run(fctx) }, f.done)
	c.mu.Lock()
	c.followers[name] = f
	c.mu.Unlock()
	return f, nil
}

// StopFollower stops and closes one follower; its folder stays, so
// AddFollower with the same name restarts it.
func (c *Cluster) StopFollower(name string) error {
	c.mu.Lock()
	f, ok := c.followers[name]
	delete(c.followers, name)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("localcluster: no follower %q", name)
	}
	f.cancel()
	<-f.done
	return f.Daemon.Close()
}

// Followers returns the running followers by name.
func (c *Cluster) Followers() map[string]*Follower {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*Follower, len(c.followers))
	for k, v := range c.followers {
		out[k] = v
	}
	return out
}

// Close stops every daemon and returns the errors they ended with.
func (c *Cluster) Close() error {
	for _, f := range c.onClose {
		f()
	}
	c.onClose = nil
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	errs := c.errs
	fs := c.followers
	c.followers = nil
	c.mu.Unlock()
	for _, f := range fs {
		errs = append(errs, f.Daemon.Close())
	}
	errs = append(errs, c.Curator.Close())
	return errors.Join(errs...)
}

// CuratorStore returns the curator's block store (the head DAG's blocks).
func (c *Cluster) CuratorStore() dag.Blocks { return c.Curator.Blocks() }

// ClusterPeer returns the cluster key's peer ID.
func (c *Cluster) ClusterPeer() peer.ID {
	id, _ := peer.Decode(c.Config.ID) // validated when the cluster was created
	return id
}
