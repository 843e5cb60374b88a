package configs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/kubo"
)

// Version is the config file format version this code reads and writes.
const Version = 1

// MaxFileSize bounds every config file read, so a wrong path (a disk image,
// /dev/zero) fails fast instead of eating memory.
const MaxFileSize = 1 << 20

// ErrInvalid is wrapped by every validation and parse error of this package.
var ErrInvalid = errors.New("configs: invalid config")

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// Cluster is what a follower needs to join a cluster: curator exports it
// (`curate export-config`), followers init from it. It holds no secret.
type Cluster struct {
	Version int `json:"version"`
	// Name is the human label of the cluster, e.g. "demo"; followers use it
	// as their local folder name unless told otherwise.
	Name string `json:"name"`
	// ID is the IPNS name of the cluster key (k51…); heads carry it and
	// IPNS records are published under it.
	ID string `json:"id"`
	// Checkpoint is the head a follower trusts without verification: the
	// genesis head, or a later one when the config was re-exported.
	Checkpoint Checkpoint `json:"checkpoint"`
	// Bootstrap lists multiaddrs (with /p2p/<peer ID>) of curators or peers.
	Bootstrap []string `json:"bootstrap"`
	Topics    Topics   `json:"topics"`
}

// Checkpoint is a trusted head: its CID, seq and the trust set it names.
type Checkpoint struct {
	Head  string   `json:"head"`
	Seq   int64    `json:"seq"`
	Trust []string `json:"trust"`
}

// Topics names the cluster's gossipsub topics.
type Topics struct {
	Heads  string `json:"heads"`
	Offers string `json:"offers"`
	Acks   string `json:"acks"`
	CRDT   string `json:"crdt"`
}

// DefaultTopics derives the topic names from the cluster ID.
func DefaultTopics(id string) Topics {
	p := "/pinfold/" + id + "/"
	return Topics{Heads: p + "heads", Offers: p + "offers", Acks: p + "acks", CRDT: p + "crdt"}
}

// Validate checks c without changing it; errors name the field.
func (c *Cluster) Validate() error {
	if c.Version != Version {
		return invalid("cluster.version", "is %d; this pinfold reads version %d", c.Version, Version)
	}
	if err := validName("cluster.name", c.Name); err != nil {
		return err
	}
	if _, err := peer.Decode(c.ID); err != nil {
		return invalid("cluster.id", "%q is not an IPNS name of a key: %v", c.ID, err)
	}
	if _, err := cid.Decode(c.Checkpoint.Head); err != nil {
		return invalid("cluster.checkpoint.head", "%q is not a CID: %v", c.Checkpoint.Head, err)
	}
	if c.Checkpoint.Seq < 0 {
		return invalid("cluster.checkpoint.seq", "is negative")
	}
	if len(c.Checkpoint.Trust) == 0 {
		return invalid("cluster.checkpoint.trust", "is empty: a cluster needs at least one curator")
	}
	for i, s := range c.Checkpoint.Trust {
		if _, err := peer.Decode(s); err != nil {
			return invalid(fmt.Sprintf("cluster.checkpoint.trust[%d]", i), "%q is not a peer ID: %v", s, err)
		}
	}
	for i, s := range c.Bootstrap {
		if err := validPeerAddr(s); err != nil {
			return invalid(fmt.Sprintf("cluster.bootstrap[%d]", i), "%v", err)
		}
	}
	for field, topic := range map[string]string{
		"cluster.topics.heads": c.Topics.Heads, "cluster.topics.offers": c.Topics.Offers,
		"cluster.topics.acks": c.Topics.Acks, "cluster.topics.crdt": c.Topics.CRDT,
	} {
		if topic == "" {
			return invalid(field, "is empty")
		}
	}
	seen := map[string]bool{}
	for _, t := range []string{c.Topics.Heads, c.Topics.Offers, c.Topics.Acks, c.Topics.CRDT} {
		if seen[t] {
			return invalid("cluster.topics", "uses %q twice", t)
		}
		seen[t] = true
	}
	return nil
}

// TrustIDs returns the checkpoint's trust set as peer IDs. Call after Validate.
func (c *Cluster) TrustIDs() ([]peer.ID, error) {
	ids := make([]peer.ID, 0, len(c.Checkpoint.Trust))
	for i, s := range c.Checkpoint.Trust {
		id, err := peer.Decode(s)
		if err != nil {
			return nil, invalid(fmt.Sprintf("cluster.checkpoint.trust[%d]", i), "%q is not a peer ID: %v", s, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Curator is a curator's own configuration (config.json in its home).
type Curator struct {
	Version int `json:"version"`
	// Listen lists the libp2p listen multiaddrs.
	Listen []string `json:"listen"`
	// API is the host:port of the daemon's HTTP API. Loopback needs no token;
	// any other address requires APIToken on every request.
	API      string `json:"api"`
	APIToken string `json:"api_token,omitempty"`
	// HeadInterval is the least time between two published heads.
	HeadInterval Duration `json:"head_interval"`
	// Admission is how offers become members: "open", "allowlist" or "manual".
	Admission string   `json:"admission"`
	Allowlist []string `json:"allowlist,omitempty"`
	// MemberTTL is how long a member stays live without a fresh offer:
	// a member that stops is shown offline once it passes, and the next
	// head marks it offline.
	MemberTTL Duration `json:"member_ttl"`
	// ReplicationMin and ReplicationMax are the cluster's default
	// replication bounds for new pins.
	ReplicationMin int `json:"replication_min"`
	ReplicationMax int `json:"replication_max"`
	// ShardTarget is the size shards are filled to. Each head signs it and
	// pins are packed to the newest head's, so a change here takes effect
	// with the next head. 0 (the default) derives it from the pledges the
	// head signs: the median pledge / 200, clamped to [1GiB, 64GiB]
	// (curator.ShardTarget says why).
	ShardTarget Size `json:"shard_target"`
	// AllocationVersion, when not 0, is the allocation algorithm version
	// the next heads record (1 to the newest this pinfold computes), so a
	// cluster can move to an improved algorithm when its curators choose:
	// the new map moves data. 0 (the default) keeps the version of the
	// newest head; new clusters start on the newest version.
	AllocationVersion int `json:"allocation_version,omitempty"`
	// AckWindow is how many of the newest heads an ACK may name: an ACK
	// of an older head is refused as stale (a member's own clock never
	// makes an ACK fresh; the head it names does).
	AckWindow int `json:"ack_window"`
	// MaxPledge is the most one member may pledge; a larger offer is
	// refused, with the reason, and changes nothing.
	MaxPledge Size `json:"max_pledge"`
	// Audit is the proof-of-possession policy: how often holders are
	// challenged, and what failing costs them.
	Audit Audit `json:"audit"`
	// RecordValidity and RecordTTL shape the IPNS records published.
	RecordValidity Duration `json:"record_validity"`
	RecordTTL      Duration `json:"record_ttl"`
	// DHT, when its mode is not "off", runs a Kademlia DHT on the host
	// and publishes the cluster's IPNS record to it on every head and
	// every record refresh. Default: off.
	DHT DHT `json:"dht"`
	// ClusterDHT is the cluster's own DHT, where members announce the
	// roots they hold; the curator is one of its servers. Default: server.
	ClusterDHT ClusterDHT `json:"cluster_dht"`
	// NAT: a curator relays for members behind NATs. Default: relay
	// service on.
	NAT NAT `json:"nat"`
}

// Audit is a curator's audit policy (docs/audits.md explains the
// defaults: a holder that deleted 10 % of a shard's blocks is caught with
// probability >= 99 % within 7 days, for about 0.1 % of the bytes it holds
// per week when shards are large).
type Audit struct {
	// Interval is the time between two audits of one holder's copy of one
	// shard. A copy newly ACKed is audited at once.
	Interval Duration `json:"interval"`
	// Samples is the number of root-to-leaf paths one audit checks.
	Samples int `json:"samples"`
	// Timeout bounds one attempt (dial, challenge, answer).
	Timeout Duration `json:"timeout"`
	// Grace is how long an audit that gets no answer is retried, with the
	// same challenge, before it counts as failed: an honest holder that is
	// slow or briefly offline is not failed.
	Grace Duration `json:"grace"`
	// FailAfter failed audits in a row mark a member failing: its copies
	// count as not held and its shards go to others at the next head. A
	// failure is recorded only for a wrong answer, or for silence through
	// the whole grace period, so one is enough by default; `curate
	// members approve` forgives the failures so far.
	FailAfter int `json:"fail_after"`
	// RemoveAfter failed audits in a row take a member out of the
	// allocation (it is no longer listed by heads).
	RemoveAfter int `json:"remove_after"`
	// ProbationStart is the capacity a new member is given before it has
	// passed any audit; each audit it passes doubles it, up to its pledge.
	ProbationStart Size `json:"probation_start"`
	// Concurrency bounds the audits run at once (one per holder at a time).
	Concurrency int `json:"concurrency"`
}

// DefaultAudit returns the audit policy of a real deployment.
func DefaultAudit() Audit {
	return Audit{
		Interval:       Duration(12 * time.Hour),
		Samples:        4,
		Timeout:        Duration(30 * time.Second),
		Grace:          Duration(time.Hour),
		FailAfter:      1,
		RemoveAfter:    3,
		ProbationStart: Size(1 << 30),
		Concurrency:    4,
	}
}

func (a *Audit) validate(field string) error {
	switch {
	case a.Interval < Duration(time.Second):
		return invalid(field+".interval", "is %s; want at least 1s", time.Duration(a.Interval))
	case a.Samples < 1 || a.Samples > 64:
		return invalid(field+".samples", "is %d; want 1 to 64", a.Samples)
	case a.Timeout <= 0:
		return invalid(field+".timeout", "must be > 0")
	case a.Grace < a.Timeout:
		return invalid(field+".grace", "(%s) must be at least %s.timeout (%s)", time.Duration(a.Grace), field, time.Duration(a.Timeout))
	case a.FailAfter < 1:
		return invalid(field+".fail_after", "must be >= 1")
	case a.RemoveAfter < a.FailAfter:
		return invalid(field+".remove_after", "(%d) must be >= %s.fail_after (%d)", a.RemoveAfter, field, a.FailAfter)
	case a.ProbationStart <= 0:
		return invalid(field+".probation_start", "must be > 0")
	case a.Concurrency < 1 || a.Concurrency > 256:
		return invalid(field+".concurrency", "is %d; want 1 to 256", a.Concurrency)
	}
	return nil
}

// DHT configures the optional Kademlia DHT (go-libp2p-kad-dht) of a
// curator or follower:
//
//	"dht": {"mode": "client", "bootstrap": ["/ip4/…/tcp/4050/p2p/12D3…"], "protocol_prefix": "/ipfs"}
type DHT struct {
	// Mode is "off" (the default), "client" (query and publish only),
	// "server" (also store and serve other peers' records) or "auto"
	// (a server while publicly reachable).
	Mode string `json:"mode"`
	// Bootstrap lists DHT peers (multiaddrs ending in /p2p/<peer ID>)
	// dialled when the routing table is empty. Connected cluster peers
	// running a DHT server join it anyway. There is no public default:
	// to use the IPFS DHT, list its bootstrap peers.
	Bootstrap []string `json:"bootstrap,omitempty"`
	// ProtocolPrefix names the DHT: "/ipfs" (the default) is the public
	// IPFS DHT; a private network picks its own, e.g. "/pinfold".
	ProtocolPrefix string `json:"protocol_prefix"`
}

// NAT sets up how a member gets through home routers:
//
//	"nat": {"traversal": true, "port_map": true, "relay_service": false, "reachability": ""}
type NAT struct {
	// Traversal turns on AutoNAT (learn whether the member is reachable),
	// circuit relay v2 with the cluster's curators as relays (a slot is
	// reserved on them while the member is not publicly reachable) and
	// DCUtR hole punching (relayed connections are upgraded to direct
	// ones). It does nothing on a member that listens on loopback only.
	Traversal bool `json:"traversal"`
	// PortMap asks the home router for a port mapping (UPnP, NAT-PMP)
	// while Traversal is on.
	PortMap bool `json:"port_map"`
	// RelayService makes the member a relay for others, within limits
	// (128 reservations, 16 relayed connections per peer, 2 minutes and
	// 1 MiB each way per connection), while it is publicly reachable. It
	// also answers AutoNAT probes.
	RelayService bool `json:"relay_service"`
	// Reachability overrides AutoNAT: "public" (a server with a public
	// address: relay at once instead of after AutoNAT confirms it) or
	// "private"; "" lets AutoNAT decide.
	Reachability string `json:"reachability,omitempty"`
}

// DefaultFollowerNAT returns a volunteer's NAT defaults: traversal and
// port mapping on, no relay service.
func DefaultFollowerNAT() NAT { return NAT{Traversal: true, PortMap: true} }

// DefaultCuratorNAT returns a curator's NAT defaults: a relay for the
// cluster's members, no traversal of its own.
func DefaultCuratorNAT() NAT { return NAT{RelayService: true} }

func (n *NAT) validate(field string) error {
	switch n.Reachability {
	case "", "public", "private":
	default:
		return invalid(field+".reachability", "is %q; want \"\", public or private", n.Reachability)
	}
	if n.PortMap && !n.Traversal {
		return invalid(field+".port_map", "needs %s.traversal", field)
	}
	return nil
}

// ClusterDHT is the DHT private to the cluster: its protocol prefix is
// derived from the cluster's ID (/pinfold/<cluster id>), so it needs no
// setup, and members are its servers. It carries provider records: which
// member holds which root.
//
//	"cluster_dht": {"mode": "server", "provide_interval": "22h"}
type ClusterDHT struct {
	// Mode is "server" (the default), "client" or "off".
	Mode string `json:"mode"`
	// ProvideInterval is how often each held root is announced again, in
	// this DHT and in the other one when its mode is not off.
	ProvideInterval Duration `json:"provide_interval"`
}

// DefaultClusterDHT returns the cluster DHT defaults: a server,
// reannouncing every 22 hours (records live 48).
func DefaultClusterDHT() ClusterDHT {
	return ClusterDHT{Mode: "server", ProvideInterval: Duration(22 * time.Hour)}
}

func (c *ClusterDHT) validate(field string) error {
	switch c.Mode {
	case "off", "client", "server":
	default:
		return invalid(field+".mode", "is %q; want server, client or off", c.Mode)
	}
	if c.ProvideInterval < Duration(time.Minute) || c.ProvideInterval > Duration(47*time.Hour) {
		return invalid(field+".provide_interval", "is %s; want 1m to 47h (DHT servers forget records after 48h)", time.Duration(c.ProvideInterval))
	}
	return nil
}

// ClusterDHTPrefix is the protocol prefix of a cluster's own DHT.
func ClusterDHTPrefix(clusterID string) string { return "/pinfold/" + clusterID }

// DefaultDHT returns the DHT defaults: off, prefix "/ipfs".
func DefaultDHT() DHT { return DHT{Mode: "off", ProtocolPrefix: "/ipfs"} }

// Enabled reports whether the mode is anything but off.
func (d *DHT) Enabled() bool { return d.Mode != "off" }

func (d *DHT) validate(field string) error {
	switch d.Mode {
	case "off", "client", "server", "auto":
	default:
		return invalid(field+".mode", "is %q; want off, client, server or auto", d.Mode)
	}
	for i, s := range d.Bootstrap {
		if err := validPeerAddr(s); err != nil {
			return invalid(fmt.Sprintf("%s.bootstrap[%d]", field, i), "%v", err)
		}
	}
	p := d.ProtocolPrefix
	if len(p) < 2 || len(p) > 128 || !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") ||
		strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid(field+".protocol_prefix", "is %q; want a path like /ipfs or /pinfold (no trailing slash, no spaces, at most 128 bytes)", p)
	}
	return nil
}

// DefaultCurator returns the configuration of a real deployment.
func DefaultCurator() Curator {
	return Curator{
		Version:        Version,
		Listen:         []string{"/ip4/0.0.0.0/tcp/4050", "/ip4/0.0.0.0/udp/4050/quic-v1"},
		API:            "127.0.0.1:9650",
		HeadInterval:   Duration(10 * time.Second),
		Admission:      "open",
		MemberTTL:      Duration(time.Minute), // three offers (DefaultFollower's OfferInterval) missed
		ReplicationMin: 2,
		ReplicationMax: 3,
		AckWindow:      16,
		MaxPledge:      Size(100 << 40),
		Audit:          DefaultAudit(),
		RecordValidity: Duration(48 * time.Hour),
		RecordTTL:      Duration(time.Minute),
		DHT:            DefaultDHT(),
		ClusterDHT:     DefaultClusterDHT(),
		NAT:            DefaultCuratorNAT(),
	}
}

// Validate checks c without changing it; errors name the field.
func (c *Curator) Validate() error {
	if c.Version != Version {
		return invalid("curator.version", "is %d; this pinfold reads version %d", c.Version, Version)
	}
	if err := validListen("curator.listen", c.Listen); err != nil {
		return err
	}
	if err := validHostPort("curator.api", c.API); err != nil {
		return err
	}
	if !isLoopback(c.API) && c.APIToken == "" {
		return invalid("curator.api_token", "is empty but curator.api %q is not a loopback address: set a token", c.API)
	}
	if c.HeadInterval <= 0 {
		return invalid("curator.head_interval", "must be > 0")
	}
	switch c.Admission {
	case "open", "allowlist", "manual":
	default:
		return invalid("curator.admission", "is %q; want open, allowlist or manual", c.Admission)
	}
	for i, s := range c.Allowlist {
		if _, err := peer.Decode(s); err != nil {
			return invalid(fmt.Sprintf("curator.allowlist[%d]", i), "%q is not a peer ID: %v", s, err)
		}
	}
	if c.MemberTTL <= 0 {
		return invalid("curator.member_ttl", "must be > 0")
	}
	if c.ReplicationMin < 1 {
		return invalid("curator.replication_min", "must be >= 1")
	}
	if c.ReplicationMin > c.ReplicationMax {
		return invalid("curator.replication_min", "(%d) must be <= curator.replication_max (%d)", c.ReplicationMin, c.ReplicationMax)
	}
	if c.ReplicationMax > allocation.MaxRepl {
		return invalid("curator.replication_max", "is %d; at most %d", c.ReplicationMax, allocation.MaxRepl)
	}
	if c.ShardTarget < 0 {
		return invalid("curator.shard_target", "is negative")
	}
	if c.AllocationVersion < 0 || c.AllocationVersion > allocation.Version {
		return invalid("curator.allocation_version", "is %d; want 0 (keep the cluster's) or 1 to %d", c.AllocationVersion, allocation.Version)
	}
	if c.AckWindow < 1 || c.AckWindow > 1024 {
		return invalid("curator.ack_window", "is %d; want 1 to 1024 heads", c.AckWindow)
	}
	if c.MaxPledge <= 0 || int64(c.MaxPledge) > allocation.MaxCapacity {
		return invalid("curator.max_pledge", "is %s; want more than 0 and at most %s", c.MaxPledge, Size(allocation.MaxCapacity))
	}
	if err := c.Audit.validate("curator.audit"); err != nil {
		return err
	}
	if c.RecordValidity <= 0 {
		return invalid("curator.record_validity", "must be > 0")
	}
	if c.RecordTTL <= 0 {
		return invalid("curator.record_ttl", "must be > 0")
	}
	if err := c.ClusterDHT.validate("curator.cluster_dht"); err != nil {
		return err
	}
	if err := c.NAT.validate("curator.nat"); err != nil {
		return err
	}
	return c.DHT.validate("curator.dht")
}

// Follower is a follower's configuration of one cluster (config.json in
// ~/.pinfold/follow/<cluster>/).
type Follower struct {
	Version int `json:"version"`
	// Storage is the pledge: a size ("500GiB") or a share of the free disk
	// under the data folder ("80%").
	Storage  Pledge `json:"storage"`
	Nickname string `json:"nickname,omitempty"`
	// Domain is an optional failure-domain tag (region, organisation).
	Domain string   `json:"domain,omitempty"`
	Listen []string `json:"listen"`
	// API is the control API's host:port; port 0 picks a free one, written
	// to api.addr in the data folder while running.
	API string `json:"api"`
	// IPFSAPI, when set, stores content in that kubo daemon instead of the
	// embedded block store.
	IPFSAPI string `json:"ipfs_api,omitempty"`
	// OfferInterval is how often a signed offer (heartbeat) is sent.
	OfferInterval Duration `json:"offer_interval"`
	// FetchConcurrency bounds the blocks in flight while fetching a pin.
	FetchConcurrency int `json:"fetch_concurrency"`
	// AckInterval is how often a signed ACK of each stored shard is sent
	// again (heartbeat), besides when a shard is stored and when a new
	// allocation keeps it.
	AckInterval Duration `json:"ack_interval"`
	// DHT, when its mode is not "off", runs a Kademlia DHT on the host
	// and also resolves the cluster's IPNS record through it; held roots
	// are announced in it too (with prefix /ipfs, the public IPFS DHT, so
	// that any IPFS node finds this volunteer). Default: off.
	DHT DHT `json:"dht"`
	// ClusterDHT is the cluster's own DHT, where the volunteer announces
	// the roots it holds. Default: server.
	ClusterDHT ClusterDHT `json:"cluster_dht"`
	// NAT sets up NAT traversal. Default: traversal and port mapping on.
	NAT NAT `json:"nat"`
	// MaxUpload and MaxDownload bound the bytes per second bitswap sends
	// (blocks served, wants) and receives (shards fetched, the pinset's
	// blocks): "5MB/s", "512KiB/s", "40Mbit/s", or "unlimited" (the
	// default). A limit is at least 64KiB/s. Gossipsub (heads, offers,
	// ACKs) and audits are not counted.
	MaxUpload   Rate `json:"max_upload"`
	MaxDownload Rate `json:"max_download"`
	// DiskGuard keeps a disk filled by another program from crashing the
	// follower: badger's logs allocated ahead, a reserve of free space,
	// fetching paused while the disk is full (docs/operations.md, "A full
	// disk"). It takes about 350 MiB of the disk. Default: on.
	DiskGuard bool `json:"disk_guard"`
	// Memory is a soft limit on the follower's heap (Go's memory limit,
	// which covers badger's memtables, caches and table builders): near
	// it the garbage collector runs more often, trading CPU for memory; it
	// never fails an allocation. "0" sets none. `follow run --memory` and
	// the GOMEMLIMIT variable override it for one run. Default: 160MiB.
	Memory Size `json:"memory"`
}

// MinMemory is the least soft memory limit a daemon takes: below it the
// garbage collector would run without pause for a daemon's fixed needs
// (badger's memtables, caches and table builders, see package store).
const MinMemory = 64 << 20

// DefaultFollowerMemory is a follower's soft memory limit by default: a
// fresh follower syncing 1,000,000 pins stays under 200 MiB of anonymous
// memory with it (docs/scale.md).
const DefaultFollowerMemory = 160 << 20

// DefaultFollower returns the configuration of a real deployment. It
// listens on port 4051, not the curator's 4050, so that a curator and a
// volunteer run on one host with their defaults (a second follower on the
// same host needs its own: follow <cluster> init --listen).
func DefaultFollower() Follower {
	return Follower{
		Version:          Version,
		Storage:          Pledge{Percent: 80},
		Listen:           []string{"/ip4/0.0.0.0/tcp/4051", "/ip4/0.0.0.0/udp/4051/quic-v1"},
		API:              "127.0.0.1:0",
		OfferInterval:    Duration(20 * time.Second), // within the curators' member_ttl (1 min) three times
		FetchConcurrency: 8,
		AckInterval:      Duration(10 * time.Minute),
		DHT:              DefaultDHT(),
		ClusterDHT:       DefaultClusterDHT(),
		NAT:              DefaultFollowerNAT(),
		DiskGuard:        true,
		Memory:           DefaultFollowerMemory,
	}
}

// Validate checks f without changing it; errors name the field.
func (f *Follower) Validate() error {
	if f.Version != Version {
		return invalid("follower.version", "is %d; this pinfold reads version %d", f.Version, Version)
	}
	if err := f.Storage.validate("follower.storage"); err != nil {
		return err
	}
	if len(f.Nickname) > 64 {
		return invalid("follower.nickname", "is longer than 64 bytes")
	}
	if len(f.Domain) > 128 {
		return invalid("follower.domain", "is longer than 128 bytes")
	}
	if err := validListen("follower.listen", f.Listen); err != nil {
		return err
	}
	if err := validHostPort("follower.api", f.API); err != nil {
		return err
	}
	if !isLoopback(f.API) {
		return invalid("follower.api", "%q is not a loopback address; the control API only listens on 127.0.0.1 or ::1", f.API)
	}
	if f.IPFSAPI != "" {
		if _, err := kubo.ParseAPI(f.IPFSAPI); err != nil {
			return invalid("follower.ipfs_api", "%v", err)
		}
	}
	if f.OfferInterval <= 0 {
		return invalid("follower.offer_interval", "must be > 0")
	}
	if f.AckInterval <= 0 {
		return invalid("follower.ack_interval", "must be > 0")
	}
	if f.FetchConcurrency < 1 || f.FetchConcurrency > 256 {
		return invalid("follower.fetch_concurrency", "is %d; want 1 to 256", f.FetchConcurrency)
	}
	if err := f.ClusterDHT.validate("follower.cluster_dht"); err != nil {
		return err
	}
	if err := f.NAT.validate("follower.nat"); err != nil {
		return err
	}
	if err := f.MaxUpload.ValidateLimit("follower.max_upload"); err != nil {
		return err
	}
	if err := f.MaxDownload.ValidateLimit("follower.max_download"); err != nil {
		return err
	}
	if f.Memory != 0 && f.Memory < MinMemory {
		return invalid("follower.memory", "is %s; want 0 (no limit) or at least %s", f.Memory, Size(MinMemory))
	}
	return f.DHT.validate("follower.dht")
}

// Pledge is the storage a follower donates: a fixed size, or a percentage
// of the free disk under its data folder.
type Pledge struct {
	Bytes   Size
	Percent int // 1..100 when Bytes is 0
}

// ParsePledge reads "500GiB" or "80%".
func ParsePledge(text string) (Pledge, error) {
	text = strings.TrimSpace(text)
	if p, ok := strings.CutSuffix(text, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 100 {
			return Pledge{}, fmt.Errorf("storage %q: want a percentage from 1%% to 100%%", text)
		}
		return Pledge{Percent: n}, nil
	}
	s, err := ParseSize(text)
	if err != nil {
		return Pledge{}, fmt.Errorf("storage: %w", err)
	}
	if s == 0 {
		return Pledge{}, fmt.Errorf("storage %q: a pledge must be more than 0 bytes", text)
	}
	return Pledge{Bytes: s}, nil
}

// Resolve returns the pledged bytes given the free bytes of the data disk.
func (p Pledge) Resolve(free uint64) int64 {
	if p.Bytes > 0 {
		return int64(p.Bytes)
	}
	return int64(free / 100 * uint64(p.Percent))
}

func (p Pledge) String() string {
	if p.Bytes > 0 {
		return p.Bytes.String()
	}
	return strconv.Itoa(p.Percent) + "%"
}

func (p Pledge) validate(field string) error {
	if p.Bytes < 0 || (p.Bytes == 0 && (p.Percent < 1 || p.Percent > 100)) || (p.Bytes > 0 && p.Percent != 0) {
		return invalid(field, "is %q; want a size like 500GiB or a percentage like 80%%", p.String())
	}
	return nil
}

func (p Pledge) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

func (p *Pledge) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return fmt.Errorf("want a string like \"500GiB\" or \"80%%\"")
	}
	v, err := ParsePledge(text)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// validator is a config that can check itself.
type validator interface{ Validate() error }

// Load reads a JSON config file into v (a pointer to a value prepared by
// its Default function), rejects unknown fields and trailing data, and
// validates it. Errors name the file and, for JSON errors, the position.
func Load(path string, v validator) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("load config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("load config %s: %w: file is larger than %d bytes", path, ErrInvalid, MaxFileSize)
	}
	if err := Decode(data, v); err != nil {
		return fmt.Errorf("load config %s: %w", path, err)
	}
	return nil
}

// Decode parses JSON into v strictly and validates it.
func Decode(data []byte, v validator) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			line, col := position(data, syn.Offset)
			return fmt.Errorf("%w: line %d column %d: %v", ErrInvalid, line, col, err)
		case errors.As(err, &typ):
			return fmt.Errorf("%w: field %s: %v", ErrInvalid, typ.Field, err)
		default:
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	return v.Validate()
}

func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Save validates v and writes it as indented JSON, atomically (temp file in
// the same folder, fsync, rename), with the given file mode.
func Save(path string, v validator, mode os.FileMode) error {
	if err := v.Validate(); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(data, '\n'), mode)
}

// WriteFileAtomic writes data to path so that readers see the old content
// or the new, never a mix, and the new content survives a crash once this
// returns.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}

func validName(field, s string) error {
	if s == "" {
		return invalid(field, "is empty")
	}
	if len(s) > 64 {
		return invalid(field, "is longer than 64 characters")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return invalid(field, "%q may only hold letters, digits, '-', '_' and '.'", s)
		}
	}
	if s == "." || s == ".." {
		return invalid(field, "%q is not a usable name", s)
	}
	return nil
}

// ValidName reports whether s can name a cluster (and its local folder).
func ValidName(s string) error { return validName("cluster name", s) }

func validListen(field string, addrs []string) error {
	if len(addrs) == 0 {
		return invalid(field, "is empty: give at least one multiaddr such as /ip4/0.0.0.0/tcp/4050")
	}
	for i, s := range addrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q is not a multiaddr: %v", s, err)
		}
	}
	return nil
}

func validPeerAddr(s string) error {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return fmt.Errorf("%q is not a multiaddr: %v", s, err)
	}
	if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
		return fmt.Errorf("%q does not end in /p2p/<peer ID>: %v", s, err)
	}
	return nil
}

func validHostPort(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return invalid(field, "%q is not host:port: %v", s, err)
	}
	if net.ParseIP(host) == nil && host != "localhost" {
		return invalid(field, "%q: host must be an IP address", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return invalid(field, "%q: port must be 0 to 65535", s)
	}
	return nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
