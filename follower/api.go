package follower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/runlock"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/metrics"
	"github.com/pinfold/pinfold/p2p"
)

// Status is what the control API's GET /v1/status returns: everything
// `follow status` and the dashboard show.
type Status struct {
	Cluster     string        `json:"cluster"`      // the local name the follower was given
	ClusterName string        `json:"cluster_name"` // the name its curators gave it
	ClusterID   string        `json:"cluster_id"`
	Peer        string        `json:"peer"`
	Nickname    string        `json:"nickname,omitempty"`
	Addrs       []string      `json:"addrs"`
	Started     time.Time     `json:"started"`
	Head        *HeadInfo     `json:"head,omitempty"`
	Record      *RecordInfo   `json:"record,omitempty"`
	Pinset      PinsetInfo    `json:"pinset"`
	Pledged     int64         `json:"pledged"`
	Free        int64         `json:"free"`
	Peers       int           `json:"peers"`
	Curators    []CuratorInfo `json:"curators"`
	Assigned    int64         `json:"assigned"` // bytes of the shards assigned by the newest plan
	Stored      int64         `json:"stored"`   // bytes of the pins stored completely
	Shards      []ShardStatus `json:"shards"`
	Why         string        `json:"why,omitempty"` // why nothing is assigned, when nothing is
	DiskError   string        `json:"disk_error,omitempty"`
	// DiskPaused says why fetching is paused for disk space and when it
	// resumes; DiskReserve is the free space held back for badger
	// (docs/operations.md, "A full disk"), DiskPauses the pauses since start.
	DiskPaused  string `json:"disk_paused,omitempty"`
	DiskReserve int64  `json:"disk_reserve"`
	DiskPauses  int64  `json:"disk_pauses"`
	// AcksPending counts this follower's ACKs that no signed head records
	// yet; they are sent again until one does.
	AcksPending int `json:"acks_pending"`
	// Audits is this follower's audit record in the signed chain: passes,
	// failures, and the newest failure's shard and reason.
	Audits   ledger.Member     `json:"audits"`
	Events   []Event           `json:"events,omitempty"`
	Rejected map[string]uint64 `json:"rejected"`
	// Refused groups the recent refusals of every topic (and of head
	// verification) by topic and reason, with the peers they came from.
	Refused    []p2p.RefusalGroup   `json:"refused,omitempty"`
	Rejections []headsync.Rejection `json:"recent_rejections,omitempty"`
	// Penalised counts the bitswap peers penalised (disconnected and
	// refused for a while) for lying, by reason; FetchRenewals the fetches
	// that stalled and asked every peer again in a new bitswap session.
	Penalised     map[string]uint64 `json:"bitswap_penalties,omitempty"`
	FetchRenewals int64             `json:"fetch_renewals,omitempty"`
	// Reach says how peers reach this volunteer (NAT traversal);
	// Provide how many held roots it announces in each DHT.
	Reach   *ReachInfo    `json:"reach,omitempty"`
	Provide []ProvideInfo `json:"provide,omitempty"`
	// Bandwidth is bitswap's traffic: the rates over the last 10 s, the
	// totals since start and the limits (bytes per second, 0: unlimited).
	Bandwidth p2p.Bandwidth `json:"bandwidth"`
}

// HeadInfo describes the newest verified head.
type HeadInfo struct {
	CID    string    `json:"cid"`
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Signer string    `json:"signer"`
}

// RecordInfo describes the IPNS record held for the newest head.
type RecordInfo struct {
	Seq uint64    `json:"seq"`
	EOL time.Time `json:"valid_until"`
}

// PinsetInfo describes the pinset replica.
type PinsetInfo struct {
	Pins     int64  `json:"pins"`
	Bytes    int64  `json:"bytes"`
	Shards   int    `json:"shards"`
	CaughtUp bool   `json:"caught_up"` // holds the pinset of the newest head
	Error    string `json:"error,omitempty"`
	// NoCuratorSince is since when no curator has been reachable (unset
	// while one is): the newest head known may not be the newest there
	// is, so the pinset may be behind even when CaughtUp is set.
	NoCuratorSince *time.Time `json:"no_curator_since,omitempty"`
}

// CuratorInfo is one key of the trust set and whether we reach it.
type CuratorInfo struct {
	Peer      string `json:"peer"`
	Connected bool   `json:"connected"`
}

// Status returns the follower's status.
func (d *Daemon) Status() Status {
	pledged, free := d.Pledge()
	st := d.pins.Stats()
	s := Status{
		Cluster: d.l.Home.Name, ClusterName: d.l.Cluster.Name, ClusterID: d.l.Cluster.ID, Peer: d.l.ID.String(), Nickname: d.l.Config.Nickname,
		Started: d.started, Pledged: pledged, Free: free, Peers: len(d.node.Peers()),
		Pinset: PinsetInfo{Pins: st.Pins, Bytes: st.Bytes, Shards: len(st.Shards)}, Bandwidth: d.node.Bandwidth(),
	}
	for _, a := range d.node.Addrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	d.networkStatus(&s)
	trustSet := d.rules.Trust
	if v, ok := d.heads.Newest(); ok {
		s.Head = &HeadInfo{CID: v.CID.String(), Seq: v.Head.Seq, Time: time.UnixMilli(v.Head.Time).UTC(), Signer: peer.ID(v.Sig.Signer).String()}
		trustSet = nil
		for _, t := range v.Head.Trust {
			trustSet = append(trustSet, peer.ID(t))
		}
		d.mu.Lock()
		s.Pinset.CaughtUp = d.caughtUp.Equals(v.CID)
		s.Pinset.Error = d.syncErr
		d.mu.Unlock()
	}
	if t := d.NoCuratorSince(); !t.IsZero() {
		t = t.UTC()
		s.Pinset.NoCuratorSince = &t
	}
	for _, id := range trustSet {
		s.Curators = append(s.Curators, CuratorInfo{Peer: id.String(), Connected: d.node.ConnectedTo(id)})
	}
	s.Shards = d.ShardRows()
	for _, r := range s.Shards {
		if r.State != ShardReleasing {
			s.Assigned += r.Bytes
		}
	}
	if u, err := d.fetcher.Usage(context.Background()); err == nil {
		s.Stored = u.Bytes
	}
	d.shards.mu.Lock()
	s.Why, s.DiskError = d.shards.reason, d.shards.diskErr
	d.shards.mu.Unlock()
	di := d.disk.info()
	s.DiskPaused, s.DiskReserve, s.DiskPauses = di.Paused, di.Reserve, di.Pauses
	s.Events = d.Events()
	if rec, ok := d.heads.Record(); ok {
		s.Record = &RecordInfo{Seq: rec.Seq, EOL: rec.EOL.UTC()}
	}
	s.Rejections, s.Rejected = d.heads.Rejections()
	for reason, n := range d.node.RejectionCounts() {
		s.Rejected[reason] += n
	}
	for reason, n := range d.book.Refused() {
		s.Rejected[reason] += n
	}
	s.AcksPending = d.out.pending()
	s.Audits = d.Audits()
	s.Audits.Peer = d.l.ID.String() // the ledger keys members by their binary ID
	s.Penalised = d.node.BitswapPenaltyCounts()
	if f, ok := d.fetcher.(*content.Fetcher); ok {
		s.FetchRenewals = f.Renewals()
	}
	s.Refused = p2p.GroupRejections(append(d.node.Rejections(), d.heads.TopicRejections()...))
	return s
}

func (d *Daemon) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.Status())
	})
	mux.HandleFunc("GET /v1/pins", d.handlePins)
	metrics.Mount(mux, d.metrics, d.opt.Pprof)
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]bool{"stopping": true})
		// The answer goes out before the server shuts down with the rest.
		_ = http.NewResponseController(w).Flush()
		d.mu.Lock()
		stop := d.stop
		d.mu.Unlock()
		if stop != nil {
			stop()
		}
	})
	return mux
}

// ErrNotRunning is returned when no follower answers for a cluster.
var ErrNotRunning = errors.New("follower: not running (start it with 'follow <cluster> run')")

// Client talks to a running follower's control API.
type Client struct {
	Base string
	HTTP *http.Client
}

// ErrStarting is returned when the follower in a data folder is still
// opening (its API does not serve yet); the error says what it is doing.
var ErrStarting = errors.New("follower: starting")

// Dial finds the control API of the follower running in h. It returns
// ErrNotInitialised for a folder that holds no follower, and ErrStarting
// (with the phase) for one that is still opening.
func Dial(h Home) (*Client, error) {
	if !h.Initialised() {
		return nil, fmt.Errorf("%s: %w", h.Name, ErrNotInitialised)
	}
	b, err := os.ReadFile(h.APIAddrPath())
	if err != nil {
		if info, held, _ := runlock.Read(h.LockPath()); held {
			return nil, fmt.Errorf("%s: %w: %s (pid %d, for %s)", h.Name, ErrStarting, info.Phase, info.PID,
				humanize.RelTime(info.Since, time.Now(), "", ""))
		}
		return nil, fmt.Errorf("%s: %w", h.Name, ErrNotRunning)
	}
	return &Client{Base: "http://" + strings.TrimSpace(string(b)), HTTP: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Status fetches the follower's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/v1/status", nil)
	if err != nil {
		return s, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Stop asks the follower to stop. It returns once the request was
// delivered; a connection closed by the follower shutting down counts as
// delivered. WaitStopped waits for the process to let its folder go.
func (c *Client) Stop(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/v1/stop", nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	resp.Body.Close()
	return nil
}

// WaitStopped waits until no follower holds h (its daemon lock is free),
// until ctx ends.
func WaitStopped(ctx context.Context, h Home) error {
	if !runlock.WaitReleased(ctx, h.LockPath(), 50*time.Millisecond) {
		return fmt.Errorf("%s: still running: %w", h.Name, ctx.Err())
	}
	return nil
}
