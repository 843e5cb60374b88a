package curator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/store"
	"github.com/pinfold/pinfold/trust"
)

// ErrNotInitialised is returned when a home folder holds no curator.
var ErrNotInitialised = errors.New("curator: home is not initialised (run 'curate init <name>')")

// ErrAlreadyInitialised is returned by Init on a home that holds a curator.
var ErrAlreadyInitialised = errors.New("curator: home is already initialised")

// Home is a curator's home folder. Its layout is in docs/design.md.
type Home struct{ Dir string }

func (h Home) CuratorKeyPath() string { return filepath.Join(h.Dir, "curator.key") }
func (h Home) ClusterKeyPath() string { return filepath.Join(h.Dir, "cluster.key") }
func (h Home) ConfigPath() string     { return filepath.Join(h.Dir, "config.json") }
func (h Home) ClusterPath() string    { return filepath.Join(h.Dir, "cluster.json") }
func (h Home) DatastorePath() string  { return filepath.Join(h.Dir, "datastore") }

// LockPath is the daemon's lock file: held while a daemon runs, it names
// its pid (internal/runlock).
func (h Home) LockPath() string { return filepath.Join(h.Dir, "daemon.lock") }

// RecordPath is where export-record writes the IPNS record file by default.
func (h Home) RecordPath(cluster ipns.Name) string {
	return filepath.Join(h.Dir, publish.RecordFileName(cluster))
}

// InitOptions parameterise Init. Now and Rand are the clock and randomness.
type InitOptions struct {
	Name   string          // cluster label, e.g. "demo"
	Config configs.Curator // curator config to write; DefaultCurator() if zero
	// CuratorKey, if set, is the curator identity to use instead of a new one.
	CuratorKey crypto.PrivKey
	Now        time.Time
	Rand       io.Reader
}

// InitResult says what Init created.
type InitResult struct {
	Cluster    configs.Cluster
	ClusterID  ipns.Name
	Curator    peer.ID
	Genesis    cid.Cid
	RecordFile string
}

// Init creates a curator and a new cluster in h: keys, configs, the signed
// genesis head and its IPNS record file. It refuses a home that already
// holds a curator, and removes what it wrote if it fails half-way.
func (h Home) Init(ctx context.Context, opt InitOptions) (res InitResult, err error) {
	if err := configs.ValidName(opt.Name); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	cfg := opt.Config
	if cfg.Version == 0 {
		cfg = configs.DefaultCurator()
	}
	if err := cfg.Validate(); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	for _, p := range []string{h.ConfigPath(), h.CuratorKeyPath(), h.ClusterKeyPath(), h.DatastorePath()} {
		if _, err := os.Stat(p); err == nil {
			return res, fmt.Errorf("init %s: %w (%s exists)", h.Dir, ErrAlreadyInitialised, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("init: %w", err)
		}
	}
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				os.RemoveAll(p)
			}
		}
	}()

	curKey := opt.CuratorKey
	if curKey == nil {
		if curKey, err = trust.GenerateKey(opt.Rand); err != nil {
			return res, fmt.Errorf("init: curator key: %w", err)
		}
	}
	clusterKey, err := trust.GenerateKey(opt.Rand)
	if err != nil {
		return res, fmt.Errorf("init: cluster key: %w", err)
	}
	for path, key := range map[string]crypto.PrivKey{h.CuratorKeyPath(): curKey, h.ClusterKeyPath(): clusterKey} {
		written = append(written, path)
		if err := trust.SaveKey(path, key); err != nil {
			return res, fmt.Errorf("init: %w", err)
		}
	}
	curID, err := peer.IDFromPrivateKey(curKey)
	if err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	clusterID, err := peer.IDFromPrivateKey(clusterKey)
	if err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	name := ipns.NameFromPeer(clusterID)

	written = append(written, h.DatastorePath())
	store, err := OpenStore(h.DatastorePath())
	if err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("init: close datastore: %w", cerr)
		}
	}()

	head := dag.Head{
		Version: dag.Version,
		Cluster: []byte(clusterID),
		Seq:     0,
		Time:    opt.Now.UnixMilli(),
		Trust:   [][]byte{[]byte(curID)},
	}
	algVer := int64(AllocationVersion)
	if cfg.AllocationVersion != 0 {
		algVer = int64(cfg.AllocationVersion)
	}
	state := dag.State{Allocation: dag.Allocation{
		Algorithm: AllocationAlgorithm,
		AlgVer:    algVer,
		Params: dag.AllocParams{
			ReplMin:     int64(cfg.ReplicationMin),
			ReplMax:     int64(cfg.ReplicationMax),
			ShardTarget: ShardTarget(cfg, nil), // no members yet: config.json's, or 1 GiB
			Epsilon:     AllocationEpsilon,
		},
	}}
	head, _, err = store.DAG.BuildHead(ctx, head, state)
	if err != nil {
		return res, fmt.Errorf("init: genesis: %w", err)
	}
	signed, err := trust.SignHead(curKey, head)
	if err != nil {
		return res, fmt.Errorf("init: sign genesis: %w", err)
	}
	genesisBytes, err := dag.EncodeSignedHead(signed)
	if err != nil {
		return res, fmt.Errorf("init: genesis: %w", err)
	}
	genesis := dag.CID(genesisBytes)
	rules := trust.Rules{Cluster: clusterID, Trust: []peer.ID{curID}}
	hs, err := headsync.New(ctx, headsync.Config{Rules: rules, Checkpoint: genesis, Name: name, Now: func() time.Time { return opt.Now }},
		store.Datastore, store.Blocks, nil)
	if err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	// Verify what was just signed, as any follower will, and record it as
	// the newest head.
	if _, err := hs.Consider(ctx, headsync.Announcement{Head: genesisBytes}, headsync.FromLocal, curID); err != nil {
		return res, fmt.Errorf("init: verify genesis: %w", err)
	}

	cluster := configs.Cluster{
		Version:    configs.Version,
		Name:       opt.Name,
		ID:         name.String(),
		Checkpoint: configs.Checkpoint{Head: genesis.String(), Seq: 0, Trust: []string{curID.String()}},
		Bootstrap:  []string{},
		Topics:     configs.DefaultTopics(name.String()),
	}
	written = append(written, h.ClusterPath(), h.ConfigPath())
	if err := configs.Save(h.ClusterPath(), &cluster, 0o644); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	if err := configs.Save(h.ConfigPath(), &cfg, 0o600); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}

	recordPath := h.RecordPath(name)
	written = append(written, recordPath)
	rec, err := publish.BuildRecord(clusterKey, genesis, 0, opt.Now, recordConfig(cfg))
	if err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	if err := publish.WriteRecordFile(recordPath, rec.Raw); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	return InitResult{Cluster: cluster, ClusterID: name, Curator: curID, Genesis: genesis, RecordFile: recordPath}, nil
}

func recordConfig(cfg configs.Curator) publish.RecordConfig {
	return publish.RecordConfig{Validity: time.Duration(cfg.RecordValidity), TTL: time.Duration(cfg.RecordTTL)}
}

// Loaded is an opened curator home: its keys and configs.
type Loaded struct {
	Home       Home
	CuratorKey crypto.PrivKey
	ClusterKey crypto.PrivKey // nil when this curator does not hold it
	Config     configs.Curator
	Cluster    configs.Cluster
}

// Load reads h's keys and configs. A missing cluster key is not an error:
// a curator without it signs heads but does not publish IPNS records.
func (h Home) Load() (*Loaded, error) {
	if _, err := os.Stat(h.ConfigPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", h.Dir, ErrNotInitialised)
	}
	l := &Loaded{Home: h, Config: configs.DefaultCurator()}
	if err := configs.Load(h.ConfigPath(), &l.Config); err != nil {
		return nil, err
	}
	if err := configs.Load(h.ClusterPath(), &l.Cluster); err != nil {
		return nil, err
	}
	var err error
	if l.CuratorKey, err = trust.LoadKey(h.CuratorKeyPath()); err != nil {
		return nil, err
	}
	if _, serr := os.Stat(h.ClusterKeyPath()); serr == nil {
		if l.ClusterKey, err = trust.LoadKey(h.ClusterKeyPath()); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// ClusterName is the IPNS name of the cluster.
func (l *Loaded) ClusterName() (ipns.Name, error) {
	id, err := peer.Decode(l.Cluster.ID)
	if err != nil {
		return ipns.Name{}, fmt.Errorf("cluster.json: id %q: %w", l.Cluster.ID, err)
	}
	return ipns.NameFromPeer(id), nil
}

// Store is the curator's local storage with its newest-head pointer.
type Store struct{ *store.Store }

// OpenStore opens the curator's datastore at dir.
func OpenStore(dir string) (*Store, error) {
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	return &Store{st}, nil
}

// Head returns the CID of the newest head this curator verified.
func (s *Store) Head(ctx context.Context) (cid.Cid, error) {
	return headsync.Stored(ctx, s.Datastore)
}

// JoinOptions parameterise Join.
type JoinOptions struct {
	Cluster    configs.Cluster // the config the cluster's curators exported
	Config     configs.Curator // this curator's config; DefaultCurator() if zero
	CuratorKey crypto.PrivKey  // this curator's identity; a new one if nil
	ClusterKey crypto.PrivKey  // the cluster key, if this curator is to publish IPNS records
	Rand       io.Reader
}

// Join creates a curator home for an existing cluster: its own key, the
// cluster config, and optionally a copy of the cluster key. It may publish
// heads once a current curator adds its peer ID to the trust set
// ('curate trust add'); until then its daemon follows like a follower.
func (h Home) Join(opt JoinOptions) (peer.ID, error) {
	if err := opt.Cluster.Validate(); err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	cfg := opt.Config
	if cfg.Version == 0 {
		cfg = configs.DefaultCurator()
	}
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	if _, err := os.Stat(h.ConfigPath()); err == nil {
		return "", fmt.Errorf("join %s: %w", h.Dir, ErrAlreadyInitialised)
	}
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	key := opt.CuratorKey
	if key == nil {
		var err error
		if key, err = trust.GenerateKey(opt.Rand); err != nil {
			return "", fmt.Errorf("join: %w", err)
		}
	}
	if err := trust.SaveKey(h.CuratorKeyPath(), key); err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	if opt.ClusterKey != nil {
		id, err := peer.IDFromPrivateKey(opt.ClusterKey)
		if err != nil {
			return "", fmt.Errorf("join: %w", err)
		}
		if ipns.NameFromPeer(id).String() != opt.Cluster.ID {
			return "", fmt.Errorf("join: the cluster key's IPNS name %s is not the cluster's %s", ipns.NameFromPeer(id), opt.Cluster.ID)
		}
		if err := trust.SaveKey(h.ClusterKeyPath(), opt.ClusterKey); err != nil {
			return "", fmt.Errorf("join: %w", err)
		}
	}
	if err := configs.Save(h.ClusterPath(), &opt.Cluster, 0o644); err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	if err := configs.Save(h.ConfigPath(), &cfg, 0o600); err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	return peer.IDFromPrivateKey(key)
}
