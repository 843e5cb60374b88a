package p2p

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The peers file: what Run remembers about peers it has been connected to.
//
//	{"version": 1, "peers": [
//	  {"id": "12D3Koo…", "addrs": ["/ip4/10.0.0.5/tcp/4050"], "last_seen": "2025-01-02T03:04:05Z"}]}
//
// It holds addresses only, never trust: a remembered peer is dialled like a
// bootstrap peer and authorised like any other peer, by the signatures on
// what it sends. Curators and followers therefore treat it the same way.
// Entries are newest first; reading skips malformed entries, keeps at most
// the limit, and refuses files over maxPeersFileSize.
const (
	peersFileVersion = 1
	maxPeersFileSize = 8 << 20 // ample for maxRememberPeers entries
	maxAddrsPerPeer  = 8
	maxAddrLen       = 256
)

type peersFileJSON struct {
	Version int        `json:"version"`
	Peers   []peerJSON `json:"peers"`
}

type peerJSON struct {
	ID       string    `json:"id"`
	Addrs    []string  `json:"addrs"`
	LastSeen time.Time `json:"last_seen"`
}

// remembered is one peer of the peers file.
type remembered struct {
	ID       peer.ID
	Addrs    []ma.Multiaddr
	LastSeen time.Time
}

// decodePeers parses a peers file, skipping entries that do not parse or
// have no usable address, merging duplicate IDs, and keeping the limit
// most recently seen.
func decodePeers(data []byte, limit int) ([]remembered, error) {
	if len(data) > maxPeersFileSize {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrPeersFile, len(data), maxPeersFileSize)
	}
	var f peersFileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeersFile, err)
	}
	if f.Version != peersFileVersion {
		return nil, fmt.Errorf("%w: version %d, this pinfold reads %d", ErrPeersFile, f.Version, peersFileVersion)
	}
	byID := make(map[peer.ID]*remembered)
	for _, p := range f.Peers {
		id, err := peer.Decode(p.ID)
		if err != nil {
			continue
		}
		var addrs []ma.Multiaddr
		for _, s := range p.Addrs {
			if len(s) > maxAddrLen {
				continue
			}
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		if prev, ok := byID[id]; ok {
			addrs = append(prev.Addrs, addrs...)
			if prev.LastSeen.After(p.LastSeen) {
				p.LastSeen = prev.LastSeen
			}
		}
		seen := p.LastSeen.UTC()
		if seen.Year() < 1 || seen.Year() > 9999 {
			seen = time.Time{} // could not be written back
		}
		byID[id] = &remembered{ID: id, Addrs: usableAddrs(addrs), LastSeen: seen}
	}
	out := make([]remembered, 0, len(byID))
	for _, r := range byID {
		if len(r.Addrs) > 0 {
			out = append(out, *r)
		}
	}
	return newest(out, limit), nil
}

// encodePeers writes peers in the file format, in the given order.
func encodePeers(peers []remembered) ([]byte, error) {
	f := peersFileJSON{Version: peersFileVersion, Peers: make([]peerJSON, 0, len(peers))}
	for _, p := range peers {
		j := peerJSON{ID: p.ID.String(), LastSeen: p.LastSeen.UTC(), Addrs: make([]string, 0, len(p.Addrs))}
		for _, a := range p.Addrs {
			j.Addrs = append(j.Addrs, a.String())
		}
		f.Peers = append(f.Peers, j)
	}
	return json.MarshalIndent(f, "", "  ")
}

// newest sorts peers most recently seen first (ties by ID) and keeps limit.
func newest(peers []remembered, limit int) []remembered {
	slices.SortFunc(peers, func(a, b remembered) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(peers) > limit {
		peers = peers[:limit]
	}
	return peers
}

// usableAddrs keeps the addresses worth dialling later: TCP or QUIC
// (quic-v1) on a specific IP (not 0.0.0.0 or ::, not multicast), without a
// /p2p suffix, without duplicates, at most maxAddrsPerPeer, in order.
func usableAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	seen := make(map[string]bool)
	for _, a := range addrs {
		if len(out) == maxAddrsPerPeer {
			break
		}
		if checkTransportAddr(a.String()) != nil {
			continue
		}
		ip, err := manet.ToIP(a)
		if err != nil || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		if k := string(a.Bytes()); !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

// loadPeers reads the peers file at path; a missing file is an empty list.
func loadPeers(path string, limit int) ([]remembered, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeersFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPeersFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrPeersFile, path, err)
	}
	peers, err := decodePeers(data, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return peers, nil
}

// savePeers replaces the file at path atomically: a synced temporary file
// in the same folder renamed over it, then the folder synced, so a crash
// leaves either the old file or the new one.
func savePeers(path string, peers []remembered) error {
	data, err := encodePeers(peers)
	if err != nil {
		return fmt.Errorf("%w: encode: %w", ErrPeersFile, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeersFile, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = io.Copy(tmp, bytes.NewReader(data))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrPeersFile, path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every filesystem syncs directories
		_ = d.Close()
	}
	return nil
}

// memory is the set of remembered peers while the node runs. Run updates
// it; status readers copy it. Safe for concurrent use.
type memory struct {
	limit int

	mu    sync.Mutex
	peers map[peer.ID]remembered
	dirty bool
}

func newMemory(limit int, initial []remembered) *memory {
	m := &memory{limit: limit, peers: make(map[peer.ID]remembered, len(initial))}
	for _, r := range initial {
		m.peers[r.ID] = r
	}
	return m
}

// seen records that id was connected at now, listening on addrs. It
// returns false (and records nothing) when no address is usable.
func (m *memory) seen(id peer.ID, addrs []ma.Multiaddr, now time.Time) bool {
	addrs = usableAddrs(addrs)
	if len(addrs) == 0 || m.limit == 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers[id] = remembered{ID: id, Addrs: addrs, LastSeen: now.UTC()}
	m.dirty = true
	if len(m.peers) > 2*m.limit {
		m.trimLocked()
	}
	return true
}

// trimLocked keeps the limit most recently seen peers.
func (m *memory) trimLocked() {
	keep := newest(m.listLocked(), m.limit)
	m.peers = make(map[peer.ID]remembered, len(keep))
	for _, r := range keep {
		m.peers[r.ID] = r
	}
}

func (m *memory) listLocked() []remembered {
	out := make([]remembered, 0, len(m.peers))
	for _, r := range m.peers {
		out = append(out, r)
	}
	return out
}

// list returns the remembered peers, newest first, at most limit.
func (m *memory) list() []remembered {
	m.mu.Lock()
	defer m.mu.Unlock()
	return newest(m.listLocked(), m.limit)
}

func (m *memory) has(id peer.ID) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.peers[id]
	return ok
}

// save writes the file when something changed since the last save (or
// always when force is set), trimming to the limit first.
func (m *memory) save(path string, force bool) error {
	m.mu.Lock()
	if !m.dirty && !force {
		m.mu.Unlock()
		return nil
	}
	m.trimLocked()
	peers := newest(m.listLocked(), m.limit)
	m.dirty = false
	m.mu.Unlock()
	if err := savePeers(path, peers); err != nil {
		m.mu.Lock()
		m.dirty = true
		m.mu.Unlock()
		return err
	}
	return nil
}
