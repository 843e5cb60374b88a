package follower

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/internal/runlock"
	"github.com/pinfold/pinfold/trust"
)

// ErrNotInitialised is returned when a data folder holds no follower.
var ErrNotInitialised = errors.New("follower: cluster is not initialised here (run 'follow <cluster> init <config>')")

// ErrAlreadyInitialised is returned by Init on a folder that holds a follower.
var ErrAlreadyInitialised = errors.New("follower: cluster is already initialised here")

// Root is the folder holding one data folder per cluster followed.
type Root struct{ Dir string }

// DefaultRoot is ~/.pinfold/follow, or $PINFOLD_FOLLOW_HOME.
func DefaultRoot() Root {
	if h := os.Getenv("PINFOLD_FOLLOW_HOME"); h != "" {
		return Root{Dir: h}
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return Root{Dir: ".pinfold-follow"}
	}
	return Root{Dir: filepath.Join(dir, ".pinfold", "follow")}
}

// Home returns the data folder of cluster name.
func (r Root) Home(name string) (Home, error) {
	if err := configs.ValidName(name); err != nil {
		return Home{}, err
	}
	return Home{Dir: filepath.Join(r.Dir, name), Name: name}, nil
}

// List returns the names of the clusters followed, sorted.
func (r Root) List() ([]string, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() || configs.ValidName(e.Name()) != nil {
			continue
		}
		h := Home{Dir: filepath.Join(r.Dir, e.Name()), Name: e.Name()}
		if _, err := os.Stat(h.ConfigPath()); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Home is one follower data folder (layout in docs/design.md).
type Home struct {
	Dir  string
	Name string // local name of the cluster
}

func (h Home) KeyPath() string       { return filepath.Join(h.Dir, "follower.key") }
func (h Home) ConfigPath() string    { return filepath.Join(h.Dir, "config.json") }
func (h Home) ClusterPath() string   { return filepath.Join(h.Dir, "cluster.json") }
func (h Home) DatastorePath() string { return filepath.Join(h.Dir, "datastore") }
func (h Home) PeersPath() string     { return filepath.Join(h.Dir, "peers.json") }
func (h Home) APIAddrPath() string   { return filepath.Join(h.Dir, "api.addr") }

// LockPath is the daemon's lock file: held while a follower runs, it
// names its pid and what it is doing (internal/runlock).
func (h Home) LockPath() string { return filepath.Join(h.Dir, "daemon.lock") }

// Initialised reports whether h holds a follower (its config.json).
func (h Home) Initialised() bool {
	_, err := os.Stat(h.ConfigPath())
	return err == nil
}

// ParseClusterConfig reads a cluster config given as a file path or as the
// JSON text itself.
func ParseClusterConfig(arg string) (configs.Cluster, error) {
	var c configs.Cluster
	if strings.HasPrefix(strings.TrimSpace(arg), "{") {
		if err := configs.Decode([]byte(arg), &c); err != nil {
			return c, fmt.Errorf("cluster config: %w", err)
		}
		return c, nil
	}
	if err := configs.Load(arg, &c); err != nil {
		return c, err
	}
	return c, nil
}

// Init creates the follower in h from a cluster config: a new follower key,
// config.json (cfg) and cluster.json. It refuses a folder already set up.
func (h Home) Init(cluster configs.Cluster, cfg configs.Follower, rand io.Reader) (peer.ID, error) {
	if err := cluster.Validate(); err != nil {
		return "", fmt.Errorf("init %s: %w", h.Name, err)
	}
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("init %s: %w", h.Name, err)
	}
	if _, err := os.Stat(h.ConfigPath()); err == nil {
		return "", fmt.Errorf("init %s: %w (%s)", h.Name, ErrAlreadyInitialised, h.Dir)
	}
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return "", fmt.Errorf("init %s: %w", h.Name, err)
	}
	var key crypto.PrivKey
	if _, err := os.Stat(h.KeyPath()); err == nil {
		// A key left by an earlier, interrupted init: keep the identity.
		if key, err = trust.LoadKey(h.KeyPath()); err != nil {
			return "", fmt.Errorf("init %s: %w", h.Name, err)
		}
	} else {
		if key, err = trust.GenerateKey(rand); err != nil {
			return "", fmt.Errorf("init %s: %w", h.Name, err)
		}
		if err := trust.SaveKey(h.KeyPath(), key); err != nil {
			return "", fmt.Errorf("init %s: %w", h.Name, err)
		}
	}
	if err := configs.Save(h.ClusterPath(), &cluster, 0o644); err != nil {
		return "", fmt.Errorf("init %s: %w", h.Name, err)
	}
	// config.json last: its presence marks the folder as initialised.
	if err := configs.Save(h.ConfigPath(), &cfg, 0o644); err != nil {
		return "", fmt.Errorf("init %s: %w", h.Name, err)
	}
	return peer.IDFromPrivateKey(key)
}

// Loaded is an opened follower data folder.
type Loaded struct {
	Home    Home
	Key     crypto.PrivKey
	ID      peer.ID
	Config  configs.Follower
	Cluster configs.Cluster
}

// Load reads h's key and configs.
func (h Home) Load() (*Loaded, error) {
	if _, err := os.Stat(h.ConfigPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", h.Name, ErrNotInitialised)
	}
	l := &Loaded{Home: h, Config: configs.DefaultFollower()}
	if err := configs.Load(h.ConfigPath(), &l.Config); err != nil {
		return nil, err
	}
	if err := configs.Load(h.ClusterPath(), &l.Cluster); err != nil {
		return nil, err
	}
	var err error
	if l.Key, err = trust.LoadKey(h.KeyPath()); err != nil {
		return nil, err
	}
	if l.ID, err = peer.IDFromPrivateKey(l.Key); err != nil {
		return nil, err
	}
	return l, nil
}

// ErrAlreadyRunning is returned by OpenDaemon when another process runs
// the follower of the same data folder.
var ErrAlreadyRunning = errors.New("follower: already running")

// lockFolder takes h's daemon lock, or says which process holds it.
func lockFolder(h Home, now time.Time) (*runlock.Lock, error) {
	l, err := runlock.Acquire(h.LockPath(), "opening the datastore", now)
	var held *runlock.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("%s: %w (pid %d)", h.Name, ErrAlreadyRunning, held.Info.PID)
	}
	return l, err
}

// Running reports whether a follower runs in h, and its pid.
func Running(h Home) (int, bool) {
	info, held, err := runlock.Read(h.LockPath())
	return info.PID, err == nil && held
}
