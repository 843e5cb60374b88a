package curator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
)

// Member states as the curator sees them.
const (
	StatePending = "pending" // offered, awaiting admission (allowlist miss or manual policy)
	StateActive  = "active"  // admitted and live
	StateOffline = "offline" // admitted, no offer within the member TTL
	StateRemoved = "removed" // removed by a curator; its offers are ignored
)

var membersPfx = ds.NewKey("/pinfold/curator/members")

// MemberInfo is the curator's record of one follower.
type MemberInfo struct {
	Peer     string    `json:"peer"`
	Nickname string    `json:"nickname"`
	Domain   string    `json:"domain,omitempty"`
	Pledged  int64     `json:"pledged"` // capacity from its newest offer
	Free     int64     `json:"free"`
	Agent    string    `json:"agent,omitempty"`
	State    string    `json:"state"`
	Admitted int64     `json:"admitted_seq"` // seq of the first head listing it; -1 before
	LastSeen time.Time `json:"last_seen"`
	// OfferTime is the signed time of the newest offer accepted; older or
	// equal offers are ignored (replays).
	OfferTime int64 `json:"offer_time"`
	// Decided records an admission decision by a curator (approve or remove),
	// which offers never undo.
	Decided string `json:"decided,omitempty"`
	// Refused is why the newest offer was refused (outside the pledge
	// policy); empty once an offer is accepted. A refused offer changes
	// nothing else.
	Refused string `json:"refused,omitempty"`
	// Forgiven is the member's count of failed audits when a curator last
	// approved it: failures up to it no longer count against its standing.
	Forgiven int64 `json:"forgiven,omitempty"`
}

// ErrOfferRefused is wrapped by the reason an offer is outside the
// curator's pledge policy.
var ErrOfferRefused = errors.New("curator: offer refused")

// PledgePolicy bounds what an offer may pledge.
type PledgePolicy struct {
	// Max is the most one member may pledge.
	Max int64
}

// check refuses a pledge over the maximum, and one larger than the free
// space the member reports plus what it already holds for the cluster
// (held, asked only then: it adds up the member's stored ACKs): a member
// cannot be given what it says it has no room for.
func (p PledgePolicy) check(o dag.Offer, held func() int64) error {
	if o.Capacity > p.Max {
		return fmt.Errorf("%w: pledge of %d bytes is over the cluster's maximum of %d", ErrOfferRefused, o.Capacity, p.Max)
	}
	if o.Capacity > o.Free {
		if h := held(); o.Capacity-o.Free > h {
			return fmt.Errorf("%w: pledge of %d bytes is more than the %d bytes free plus the %d bytes held", ErrOfferRefused, o.Capacity, o.Free, h)
		}
	}
	return nil
}

// Members is the curator's registry of followers, persisted in the
// datastore. Its methods are safe for concurrent use.
type Members struct {
	mu      sync.Mutex
	d       ds.Datastore
	policy  string
	pledge  PledgePolicy
	allow   map[peer.ID]bool
	ttl     time.Duration
	byPeer  map[peer.ID]*MemberInfo
	version uint64 // bumped on every change that affects the next head
}

// ErrUnknownMember is returned for a peer the registry has never seen.
var ErrUnknownMember = errors.New("curator: unknown member")

func openMembers(ctx context.Context, d ds.Datastore, policy string, allow []string, ttl time.Duration, pledge PledgePolicy) (*Members, error) {
	m := &Members{d: d, policy: policy, pledge: pledge, allow: map[peer.ID]bool{}, ttl: ttl, byPeer: map[peer.ID]*MemberInfo{}}
	for _, s := range allow {
		if id, err := peer.Decode(s); err == nil {
			m.allow[id] = true
		}
	}
	res, err := d.Query(ctx, query.Query{Prefix: membersPfx.String()})
	if err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("load members: %w", r.Error)
		}
		var mi MemberInfo
		if err := json.Unmarshal(r.Value, &mi); err != nil {
			return nil, fmt.Errorf("load member %s: %w", r.Key, err)
		}
		id, err := peer.Decode(mi.Peer)
		if err != nil {
			return nil, fmt.Errorf("load member %s: %w", r.Key, err)
		}
		m.byPeer[id] = &mi
	}
	return m, nil
}

func (m *Members) saveLocked(ctx context.Context, id peer.ID) error {
	b, err := json.Marshal(m.byPeer[id])
	if err != nil {
		return err
	}
	return m.d.Put(ctx, membersPfx.ChildString(id.String()), b)
}

// Offer records a verified offer; held returns what the member holds for
// the cluster now (its current stored ACKs). It returns whether the
// registry changed in a way the next head must show. An offer outside the
// pledge policy is refused with an error wrapping ErrOfferRefused: only
// the reason is kept, for `members ls`.
//
// Every member offers every offer_interval, so an offer that changes
// nothing costs O(1): held is asked only for a pledge over the free
// space, and the nickname is checked against the other members only when
// it is new for this member (the first to take a nickname keeps it, so a
// member keeping the one it was accepted with needs no check). At 10,000
// members the check on every offer took 0.5 ms of the curator's time an
// offer (BenchmarkOffer).
func (m *Members) Offer(ctx context.Context, o dag.Offer, held func() int64, now time.Time) (bool, error) {
	id := peer.ID(o.Peer)
	m.mu.Lock()
	defer m.mu.Unlock()
	mi, ok := m.byPeer[id]
	if ok && o.Time <= mi.OfferTime {
		return false, nil // a replay, or an older offer arriving late
	}
	err := m.pledge.check(o, held)
	if err == nil && (!ok || mi.Nickname != o.Nickname || mi.Refused != "" || mi.State == StateRemoved) {
		err = m.nicknameFreeLocked(id, o.Nickname)
	}
	if err != nil {
		if !ok {
			if len(m.byPeer) >= maxStrangers+m.admittedLocked() {
				return false, err // do not let refused strangers fill the registry
			}
			mi = &MemberInfo{Peer: id.String(), Admitted: -1, State: StatePending, Nickname: o.Nickname}
			m.byPeer[id] = mi
		}
		mi.Refused = err.Error()
		mi.OfferTime = o.Time
		if serr := m.saveLocked(ctx, id); serr != nil {
			return false, serr
		}
		return false, err
	}
	if !ok {
		mi = &MemberInfo{Peer: id.String(), Admitted: -1, State: StatePending}
		m.byPeer[id] = mi
	}
	mi.Refused = ""
	before := *mi
	mi.OfferTime = o.Time
	mi.Nickname, mi.Domain, mi.Pledged, mi.Free, mi.Agent = o.Nickname, o.Domain, o.Capacity, o.Free, o.Agent
	mi.LastSeen = now
	switch {
	case mi.Decided == StateRemoved:
		mi.State = StateRemoved
	case mi.Decided == StateActive || m.policy == "open" || (m.policy == "allowlist" && m.allow[id]):
		mi.State = StateActive
	default:
		mi.State = StatePending
	}
	changed := before.State != mi.State || before.Pledged != mi.Pledged || before.Nickname != mi.Nickname || before.Domain != mi.Domain
	if changed {
		m.version++
	}
	return changed, m.saveLocked(ctx, id)
}

// nicknameFreeLocked refuses a nickname another member (one not removed)
// already uses: nicknames name members in every listing, so they are
// unique within a cluster. The first to use a nickname keeps it.
func (m *Members) nicknameFreeLocked(id peer.ID, nick string) error {
	if nick == "" {
		return nil
	}
	for other, mi := range m.byPeer {
		if other != id && mi.Nickname == nick && mi.State != StateRemoved && mi.Refused == "" {
			return fmt.Errorf("%w: nickname %q is taken by member %s; choose another (config.json: nickname)", ErrOfferRefused, nick, other)
		}
	}
	return nil
}

// forgive drops the failures a curator forgave from an audit record.
func forgive(r ledger.Member, forgiven int64) ledger.Member {
	r.Streak = max(min(r.Streak, r.Fails-forgiven), 0)
	return r
}

// maxStrangers bounds the registry entries of peers never admitted.
const maxStrangers = 4096

func (m *Members) admittedLocked() int {
	n := 0
	for _, mi := range m.byPeer {
		if mi.Admitted >= 0 {
			n++
		}
	}
	return n
}

// Decide approves (StateActive) or removes (StateRemoved) a member. An
// approval also forgives the failed audits the member has so far (fails).
func (m *Members) Decide(ctx context.Context, id peer.ID, state string, fails int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mi, ok := m.byPeer[id]
	if !ok {
		if state != StateRemoved {
			return fmt.Errorf("%w: %s has sent no offer yet", ErrUnknownMember, id)
		}
		mi = &MemberInfo{Peer: id.String(), Admitted: -1}
		m.byPeer[id] = mi
	}
	mi.Decided, mi.State = state, state
	if state == StateActive {
		mi.Forgiven = fails
	}
	m.version++
	return m.saveLocked(ctx, id)
}

// Expire marks members whose newest offer is older than the TTL offline.
func (m *Members) Expire(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, mi := range m.byPeer {
		if mi.State == StateActive && now.Sub(mi.LastSeen) > m.ttl {
			mi.State = StateOffline
			m.version++
			if err := m.saveLocked(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// Version changes whenever the member list of the next head would.
func (m *Members) Version() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version
}

// List returns every member, sorted by peer ID. A member whose newest
// offer is older than the TTL shows as offline at once, before the next
// Expire (each head) records it.
func (m *Members) List() []MemberInfo {
	return m.ListAt(time.Time{})
}

// ListAt is List with the TTL judged at now (zero: not judged).
func (m *Members) ListAt(now time.Time) []MemberInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MemberInfo, 0, len(m.byPeer))
	for _, mi := range m.byPeer {
		c := *mi
		if !now.IsZero() && c.State == StateActive && now.Sub(c.LastSeen) > m.ttl {
			c.State = StateOffline
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// Next computes the member list of the head at seq from the parent's list
// and this registry: the registry's opinion wins for the peers it knows
// (admitted, offline, removed); members admitted by another curator that
// this one has no record of are kept as they are.
//
// The capacity signed for a member is its pledge as its audit record
// allows (AuditPolicy.Standing, record gives it); an expelled member is
// not listed.
func (m *Members) Next(ctx context.Context, parent []dag.Member, seq int64, policy AuditPolicy, record func(peer.ID) ledger.Member) ([]dag.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byPeer := map[string]dag.Member{}
	for _, pm := range parent {
		byPeer[string(pm.Peer)] = pm
	}
	for id, mi := range m.byPeer {
		key := string(id)
		prev, listed := byPeer[key]
		switch mi.State {
		case StatePending:
			continue
		case StateRemoved:
			delete(byPeer, key)
			continue
		}
		capacity, standing, _ := policy.Standing(mi.Pledged, forgive(record(id), mi.Forgiven))
		if standing == StandingExpelled {
			delete(byPeer, key)
			continue
		}
		nm := dag.Member{Peer: []byte(id), Capacity: capacity, Domain: mi.Domain, Nickname: mi.Nickname, Admitted: seq}
		if listed {
			nm.Admitted = prev.Admitted
			nm.Offline = prev.Offline
		}
		if mi.State == StateOffline {
			if nm.Offline == nil {
				s := seq
				nm.Offline = &s
			}
		} else {
			nm.Offline = nil
		}
		if mi.Admitted < 0 {
			mi.Admitted = nm.Admitted
			if err := m.saveLocked(ctx, id); err != nil {
				return nil, err
			}
		}
		byPeer[key] = nm
	}
	out := make([]dag.Member, 0, len(byPeer))
	for _, v := range byPeer {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Peer, out[j].Peer) < 0 })
	return out, nil
}
