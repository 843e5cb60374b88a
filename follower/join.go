package follower

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// Joining a cluster: where its config comes from, and what is checked
// before a follower trusts it (docs/design.md, "Joining").

// JoinOptions say how to obtain a cluster config that is not a file.
type JoinOptions struct {
	// Bootstrap lists multiaddrs with /p2p/<peer ID> of the cluster's
	// peers: required to join by IPNS name, and used to check a config.
	Bootstrap []string
	// Trust is the curator peer ID the user trusts: required to join by
	// IPNS name (an IPNS name alone names only the cluster key).
	Trust peer.ID
	// Now is the clock; Timeout bounds each network step (0: 10 s).
	Now     func() time.Time
	Timeout time.Duration
}

// Errors of joining.
var (
	// ErrNeedTrust: an IPNS name was given without --trust.
	ErrNeedTrust = errors.New("follower: an IPNS name alone cannot say which curators to trust")
	// ErrNoPeers: no bootstrap peer answered for the cluster.
	ErrNoPeers = errors.New("follower: no peer answered for the cluster")
	// ErrWrongCluster: what peers or the datastore hold belongs to another
	// cluster than the config names.
	ErrWrongCluster = errors.New("follower: cluster mismatch")
)

// errNotServing: a peer was reached but does not speak the cluster's
// head protocol, whose ID carries the cluster's name.
var errNotServing = errors.New("reached, but it serves no cluster named")

// MaxConfigBytes bounds a cluster config fetched over HTTP.
const MaxConfigBytes = 1 << 20

// LoadClusterConfig reads a cluster config from arg: the JSON text, an
// http(s) URL (fetched within the timeout, at most MaxConfigBytes), an
// IPNS name of a cluster (resolved through opt.Bootstrap, trusted through
// opt.Trust), or a file path.
func LoadClusterConfig(ctx context.Context, arg string, opt JoinOptions) (configs.Cluster, error) {
	opt = opt.withDefaults()
	switch {
	case strings.HasPrefix(strings.TrimSpace(arg), "{"):
		return ParseClusterConfig(arg)
	case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
		return fetchClusterConfig(ctx, arg, opt.Timeout)
	}
	if _, err := os.Stat(arg); err != nil {
		if name, nerr := ipns.NameFromString(arg); nerr == nil {
			return ResolveCluster(ctx, name, opt)
		}
	}
	return ParseClusterConfig(arg)
}

func (o JoinOptions) withDefaults() JoinOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}

func fetchClusterConfig(ctx context.Context, url string, timeout time.Duration) (configs.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return configs.Cluster{}, fmt.Errorf("cluster config %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return configs.Cluster{}, fmt.Errorf("cluster config: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return configs.Cluster{}, fmt.Errorf("cluster config %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxConfigBytes+1))
	if err != nil {
		return configs.Cluster{}, fmt.Errorf("cluster config %s: %w", url, err)
	}
	if len(body) > MaxConfigBytes {
		return configs.Cluster{}, fmt.Errorf("cluster config %s: larger than %d bytes", url, MaxConfigBytes)
	}
	var c configs.Cluster
	if err := configs.Decode(body, &c); err != nil {
		return c, fmt.Errorf("cluster config %s: %w", url, err)
	}
	return c, nil
}

// peerHead is one peer's newest head, as it answered over the head
// protocol: the signed head (its signature not checked yet) and its IPNS
// record when the peer holds one.
type peerHead struct {
	from peer.ID
	data []byte
	head dag.SignedHead
	rec  *publish.Record
}

// askPeers asks every bootstrap peer of cluster name for its newest head,
// from a short-lived host of a throwaway identity. It returns the answers
// that decode and whose record (if any) verifies against the name, and a
// line per peer that did not answer usefully.
func askPeers(ctx context.Context, name ipns.Name, bootstrap []string, opt JoinOptions) ([]peerHead, []error, error) {
	if len(bootstrap) == 0 {
		return nil, nil, fmt.Errorf("%w: no bootstrap addresses (--bootstrap /ip4/…/tcp/…/p2p/<peer ID>)", ErrNoPeers)
	}
	key, err := trust.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		return nil, nil, fmt.Errorf("join: host: %w", err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout) // for all peers together
	defer cancel()
	var heads []peerHead
	var problems []error
	for _, s := range bootstrap {
		ph, err := askPeer(ctx, h, name, s, opt)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		heads = append(heads, ph)
	}
	return heads, problems, nil
}

func askPeer(ctx context.Context, h host.Host, name ipns.Name, addr string, opt JoinOptions) (peerHead, error) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return peerHead{}, fmt.Errorf("%s: %w", addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peerHead{}, fmt.Errorf("%s: want /p2p/<peer ID> at the end: %w", addr, err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		return peerHead{}, fmt.Errorf("%s: connect: %w", ai.ID, err)
	}
	st, err := h.NewStream(ctx, ai.ID, headsync.ProtocolID(name.String()))
	if err != nil {
		return peerHead{}, fmt.Errorf("%s: %w %s (%v)", ai.ID, errNotServing, name, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	_ = st.CloseWrite()
	data, err := io.ReadAll(io.LimitReader(st, headsync.MaxAnnouncement+1))
	if err != nil {
		return peerHead{}, fmt.Errorf("%s: %w", ai.ID, err)
	}
	an, err := headsync.DecodeAnnouncement(data)
	if err != nil {
		return peerHead{}, fmt.Errorf("%s: %w", ai.ID, err)
	}
	if len(an.Head) == 0 {
		return peerHead{}, fmt.Errorf("%s: sent no head", ai.ID)
	}
	sh, err := dag.DecodeSignedHead(an.Head)
	if err != nil {
		return peerHead{}, fmt.Errorf("%s: %w", ai.ID, err)
	}
	ph := peerHead{from: ai.ID, data: an.Head, head: sh}
	if len(an.Record) > 0 {
		rec, err := publish.ParseRecord(an.Record, name, opt.Now())
		if err != nil {
			return peerHead{}, fmt.Errorf("%s: its record: %w", ai.ID, err)
		}
		if err := publish.CheckHead(rec, dag.CID(an.Head), uint64(sh.Head.Seq)); err != nil {
			return peerHead{}, fmt.Errorf("%s: %w", ai.ID, err)
		}
		ph.rec = &rec
	}
	return ph, nil
}

// ResolveCluster builds the config of the cluster named by an IPNS name
// from the newest head its bootstrap peers hold.
//
// The trust decision: an IPNS name is the cluster key, which signs only
// IPNS records. Whoever holds it can point the name at any head, even a
// head of a chain of its own making, so a name alone cannot be a trust
// root. The user names one curator they trust (opt.Trust, a peer ID
// obtained the way they obtained the name): the newest head the peers
// hold must be signed by that curator, for this cluster, and it becomes
// the checkpoint (its CID, seq and trust set), exactly as a config
// exported with 'curate export-config --checkpoint-latest' would be.
func ResolveCluster(ctx context.Context, name ipns.Name, opt JoinOptions) (configs.Cluster, error) {
	opt = opt.withDefaults()
	if opt.Trust == "" {
		return configs.Cluster{}, fmt.Errorf("%w: give --trust <curator peer ID> (from the curators, like the name), or join from the config file or URL", ErrNeedTrust)
	}
	if !trust.IsEd25519(opt.Trust) {
		return configs.Cluster{}, fmt.Errorf("--trust %s: not an ed25519 peer ID", opt.Trust)
	}
	clusterID := name.Peer()
	heads, problems, err := askPeers(ctx, name, opt.Bootstrap, opt)
	if err != nil {
		return configs.Cluster{}, err
	}
	var best *peerHead
	for i := range heads {
		ph := &heads[i]
		if _, err := trust.VerifySigned(trust.Rules{Cluster: clusterID}, [][]byte{[]byte(opt.Trust)}, ph.data); err != nil {
			problems = append(problems, fmt.Errorf("%s: newest head seq %d: %w", ph.from, ph.head.Head.Seq, err))
			continue
		}
		if best == nil || ph.head.Head.Seq > best.head.Head.Seq {
			best = ph
		}
	}
	if best == nil {
		return configs.Cluster{}, fmt.Errorf("%w: no peer holds a head of cluster %s signed by curator %s: %s",
			ErrNoPeers, name, opt.Trust, errorsLine(problems))
	}
	trustSet := make([]string, 0, len(best.head.Head.Trust))
	for _, t := range best.head.Head.Trust {
		trustSet = append(trustSet, peer.ID(t).String())
	}
	c := configs.Cluster{
		Version:    configs.Version,
		Name:       name.String(),
		ID:         name.String(),
		Checkpoint: configs.Checkpoint{Head: dag.CID(best.data).String(), Seq: best.head.Head.Seq, Trust: trustSet},
		Bootstrap:  append([]string(nil), opt.Bootstrap...),
		Topics:     configs.DefaultTopics(name.String()),
	}
	return c, c.Validate()
}

// CheckClusterOnline asks the config's bootstrap peers for their newest
// head and refuses a config none of whose reachable peers serve its
// cluster: a mistyped or altered cluster id, or a checkpoint whose trust
// set signed none of the heads they hold. With no peer reachable it says
// so and lets the caller decide (joining offline is allowed).
func CheckClusterOnline(ctx context.Context, c configs.Cluster, opt JoinOptions) error {
	opt = opt.withDefaults()
	name, err := ipns.NameFromString(c.ID)
	if err != nil {
		return fmt.Errorf("cluster.id %q: %w", c.ID, err)
	}
	boot := c.Bootstrap
	if len(opt.Bootstrap) > 0 {
		boot = opt.Bootstrap
	}
	heads, problems, err := askPeers(ctx, name, boot, opt)
	if err != nil {
		return err
	}
	if len(heads) == 0 {
		if errors.Is(errors.Join(problems...), errNotServing) {
			return fmt.Errorf("%w: cluster.id %s: is it copied right? %s", ErrWrongCluster, name, errorsLine(problems))
		}
		return fmt.Errorf("%w: %s", ErrNoPeers, errorsLine(problems))
	}
	for _, ph := range heads {
		if !bytes.Equal(ph.head.Head.Cluster, []byte(name.Peer())) {
			return fmt.Errorf("%w: peer %s serves heads of cluster %s, the config names %s",
				ErrWrongCluster, ph.from, ipns.NameFromPeer(peer.ID(ph.head.Head.Cluster)), name)
		}
	}
	return nil
}

// errorsLine joins errors on one line.
func errorsLine(errs []error) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}
