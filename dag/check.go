package dag

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Limits. A block that exceeds one is rejected with ErrTooLarge (or
// ErrMalformed where the value has one exact size), both on decode and on
// encode: this code never writes what it would refuse to read.
const (
	MaxBlockSize     = 1 << 20 // bytes of any block
	MaxPeerIDLen     = 64      // bytes of a binary peer ID
	SignatureLen     = 64      // bytes of an ed25519 signature, exactly
	MaxNicknameLen   = 64      // bytes (UTF-8)
	MaxDomainLen     = 128     // bytes (UTF-8) of a failure-domain tag
	MaxAgentLen      = 128     // bytes (UTF-8) of an offer's agent string
	MaxAlgorithmLen  = 128     // bytes (UTF-8) of an allocation algorithm id
	MaxTrust         = 64      // curator keys in a trust set
	MaxCRDTHeads     = 1024    // CRDT heads in a pinset
	MaxCRDTHeadLen   = 128     // bytes of one CRDT head CID
	MaxAddrs         = 16      // addresses in an offer
	MaxAddrLen       = 256     // bytes of one binary multiaddr
	MaxOverrides     = 65536   // overrides in an allocation
	MaxOverridePeers = 256     // peers in one override's pin or exclude list
	MaxDigestLen     = 68      // bytes of an ACK or audit digest (a multihash)
	NonceLen         = 32      // bytes of an audit nonce, exactly
	MaxReasonLen     = 256     // bytes (UTF-8) of an audit's failure reason
	MaxListChunks    = 16384   // chunks in one List (16384 links stay under 1 MiB)
)

// Chunk sizes: every chunk of a list but the last holds exactly this many
// items; the last holds 1..size. A chunk of items at their maximum sizes
// stays under half of MaxBlockSize (tested).
const (
	MemberChunkSize = 1024
	ShardChunkSize  = 4096
	LogChunkSize    = 512
)

// ACK states.
const (
	StateStored   = "stored"
	StateReleased = "released"
)

// Audit results.
const (
	ResultPass = "pass"
	ResultFail = "fail"
)

// Field names in errors are a prefix p (the path to the enclosing record,
// "" or ending in ".") and a name; they are joined only when a check fails,
// so checking a valid record allocates nothing.

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

func tooLarge(field string, n, limit int) error {
	return fmt.Errorf("%w: %s: %d, limit %d", ErrTooLarge, field, n, limit)
}

func index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// checkVersion accepts the versions this code reads: MinVersion..Version.
func checkVersion(v int64) error {
	if v < MinVersion || v > Version {
		return versionError(v)
	}
	return nil
}

// checkAuditVersion accepts AuditVersion..Version: audits do not exist in
// version 1.
func checkAuditVersion(v int64) error {
	if v < AuditVersion || v > Version {
		return fmt.Errorf("%w %d for an audit (audits exist from version %d; this program reads up to %d)",
			ErrUnknownVersion, v, AuditVersion, Version)
	}
	return nil
}

func checkPeer(p, name string, id []byte) error {
	if len(id) == 0 {
		return malformed(p+name, "empty peer ID")
	}
	if len(id) > MaxPeerIDLen {
		return tooLarge(p+name+" (bytes)", len(id), MaxPeerIDLen)
	}
	return nil
}

func checkNonNeg(p, name string, v int64) error {
	if v < 0 {
		return malformed(p+name, "negative value %d", v)
	}
	return nil
}

// checkText accepts valid UTF-8 without control characters (they could
// rewrite a terminal that displays the text) of at most limit bytes.
func checkText(p, name, s string, limit int) error {
	if len(s) > limit {
		return tooLarge(p+name+" (bytes)", len(s), limit)
	}
	if !utf8.ValidString(s) {
		return malformed(p+name, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return malformed(p+name, "contains control character %U", r)
		}
	}
	return nil
}

func checkLink(p, name string, c cid.Cid) error {
	if !IsBlockCID(c) {
		return malformed(p+name, "link %s is not a CIDv1 dag-cbor sha2-256", c)
	}
	return nil
}

// checkPeerSet checks a list of peer IDs that must be strictly ascending.
func checkPeerSet(p, name string, ps [][]byte, limit int) error {
	if len(ps) > limit {
		return tooLarge(p+name+" (entries)", len(ps), limit)
	}
	for i, id := range ps {
		if err := checkPeer("", "", id); err != nil {
			return checkPeer(p, index(name, i), id)
		}
		if i > 0 && bytes.Compare(ps[i-1], id) >= 0 {
			return malformed(p+index(name, i), "not in strictly ascending byte order")
		}
	}
	return nil
}

func checkSignature(p string, s *Signature) error {
	if err := checkPeer(p, "signer", s.Signer); err != nil {
		return err
	}
	if len(s.Sig) != SignatureLen {
		return malformed(p+"sig", "%d bytes, want %d", len(s.Sig), SignatureLen)
	}
	return nil
}

func checkHead(h *Head) error { return checkHeadAt("", h) }

func checkHeadAt(p string, h *Head) error {
	if err := checkVersion(h.Version); err != nil {
		return err
	}
	if err := checkPeer(p, "cluster", h.Cluster); err != nil {
		return err
	}
	if err := checkNonNeg(p, "seq", h.Seq); err != nil {
		return err
	}
	if h.Parent != nil {
		if err := checkLink(p, "parent", *h.Parent); err != nil {
			return err
		}
	}
	if err := checkNonNeg(p, "time", h.Time); err != nil {
		return err
	}
	if len(h.Trust) == 0 {
		return malformed(p+"trust", "empty trust set")
	}
	if err := checkPeerSet(p, "trust", h.Trust, MaxTrust); err != nil {
		return err
	}
	if err := checkLink(p, "pinset", h.Pinset); err != nil {
		return err
	}
	if err := checkLink(p, "members", h.Members); err != nil {
		return err
	}
	return checkLink(p, "allocation", h.Allocation)
}

func checkSignedHead(s *SignedHead) error {
	if err := checkHeadAt("head.", &s.Head); err != nil {
		return err
	}
	return checkSignature("sig.", &s.Sig)
}

func checkPinset(ps *Pinset) error {
	if len(ps.CRDTHeads) > MaxCRDTHeads {
		return tooLarge("crdtHeads (entries)", len(ps.CRDTHeads), MaxCRDTHeads)
	}
	var prev []byte
	for i, c := range ps.CRDTHeads {
		if !c.Defined() {
			return malformed(index("crdtHeads", i), "undefined CID")
		}
		b := c.Bytes()
		if len(b) > MaxCRDTHeadLen {
			return tooLarge(index("crdtHeads", i)+" (bytes)", len(b), MaxCRDTHeadLen)
		}
		if i > 0 && bytes.Compare(prev, b) >= 0 {
			return malformed(index("crdtHeads", i), "not in strictly ascending byte order")
		}
		prev = b
	}
	if err := checkNonNeg("", "pins", ps.Pins); err != nil {
		return err
	}
	if err := checkNonNeg("", "bytes", ps.Bytes); err != nil {
		return err
	}
	return checkLink("", "shards", ps.Shards)
}

func checkList(l *List) error {
	if err := checkNonNeg("", "count", l.Count); err != nil {
		return err
	}
	if len(l.Chunks) > MaxListChunks {
		return tooLarge("chunks (entries)", len(l.Chunks), MaxListChunks)
	}
	if (l.Count == 0) != (len(l.Chunks) == 0) {
		return malformed("count", "%d items in %d chunks", l.Count, len(l.Chunks))
	}
	if l.Count < int64(len(l.Chunks)) {
		return malformed("count", "%d items cannot fill %d chunks", l.Count, len(l.Chunks))
	}
	for i, c := range l.Chunks {
		if err := checkLink("", index("chunks", i), c); err != nil {
			return err
		}
	}
	return nil
}

// checkListFor adds the checks that depend on the element type's chunk size.
func checkListFor(l *List, chunkSize int) error {
	if err := checkList(l); err != nil {
		return err
	}
	n := int64(len(l.Chunks))
	if l.Count > n*int64(chunkSize) || (n > 0 && l.Count <= (n-1)*int64(chunkSize)) {
		return malformed("count", "%d items do not fit %d chunks of %d", l.Count, n, chunkSize)
	}
	return nil
}

func checkChunkLen(n, limit int) error {
	if n == 0 {
		return malformed("items", "empty chunk")
	}
	if n > limit {
		return tooLarge("items (entries)", n, limit)
	}
	return nil
}

func checkMemberChunk(c *MemberChunk) error {
	if err := checkChunkLen(len(c.Items), MemberChunkSize); err != nil {
		return err
	}
	for i := range c.Items {
		if err := checkMember("", &c.Items[i]); err != nil {
			return checkMember(index("items", i)+".", &c.Items[i])
		}
		if i > 0 && bytes.Compare(c.Items[i-1].Peer, c.Items[i].Peer) >= 0 {
			return malformed(index("items", i)+".peer", "members not in strictly ascending order of peer")
		}
	}
	return nil
}

func checkMember(p string, m *Member) error {
	if err := checkPeer(p, "peer", m.Peer); err != nil {
		return err
	}
	if err := checkNonNeg(p, "capacity", m.Capacity); err != nil {
		return err
	}
	if err := checkText(p, "domain", m.Domain, MaxDomainLen); err != nil {
		return err
	}
	if err := checkText(p, "nickname", m.Nickname, MaxNicknameLen); err != nil {
		return err
	}
	if err := checkNonNeg(p, "admitted", m.Admitted); err != nil {
		return err
	}
	if m.Offline != nil {
		return checkNonNeg(p, "offline", *m.Offline)
	}
	return nil
}

func checkShardChunk(c *ShardChunk) error {
	if err := checkChunkLen(len(c.Items), ShardChunkSize); err != nil {
		return err
	}
	for i := range c.Items {
		if err := checkShard("", &c.Items[i]); err != nil {
			return checkShard(index("items", i)+".", &c.Items[i])
		}
		if i > 0 && c.Items[i-1].ID >= c.Items[i].ID {
			return malformed(index("items", i)+".id", "shards not in strictly ascending order of id")
		}
	}
	return nil
}

func checkShard(p string, s *Shard) error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"id", s.ID}, {"bytes", s.Bytes}, {"pins", s.Pins}, {"replMin", s.ReplMin}, {"replMax", s.ReplMax}} {
		if err := checkNonNeg(p, f.name, f.v); err != nil {
			return err
		}
	}
	if s.ReplMin > s.ReplMax {
		return malformed(p+"replMin", "%d is greater than replMax %d", s.ReplMin, s.ReplMax)
	}
	return nil
}

func checkLogChunk(c *LogChunk) error {
	if err := checkChunkLen(len(c.Items), LogChunkSize); err != nil {
		return err
	}
	for i := range c.Items {
		if err := checkLogEntry("", &c.Items[i]); err != nil {
			return checkLogEntry(index("items", i)+".", &c.Items[i])
		}
	}
	return nil
}

func checkLogEntry(p string, e *LogEntry) error {
	switch {
	case e.Ack != nil && e.Audit != nil:
		return malformed(p+"(union)", "log entry of two kinds")
	case e.Ack != nil:
		return checkSignedAckAt(p+"ack.", e.Ack)
	case e.Audit != nil:
		return checkSignedAuditAt(p+"audit.", e.Audit)
	}
	return malformed(p+"(union)", "log entry of no known kind")
}

// CheckLogEntryVersion reports whether a log entry may appear in the log
// of a head of version headVersion: audit entries only from AuditVersion
// (a version 1 head's log holds ACKs only). The entry itself is checked
// when its chunk is decoded; a reader of a head's log calls this with the
// head's version. BuildHead applies it before writing.
func CheckLogEntryVersion(headVersion int64, e LogEntry) error {
	if e.Audit != nil && headVersion < AuditVersion {
		return malformed("audit", "audit entry in the log of a version %d head (audits exist from version %d)", headVersion, AuditVersion)
	}
	return nil
}

func checkAllocation(a *Allocation) error {
	if a.Algorithm == "" {
		return malformed("algorithm", "empty")
	}
	if err := checkText("", "algorithm", a.Algorithm, MaxAlgorithmLen); err != nil {
		return err
	}
	if err := checkNonNeg("", "algVer", a.AlgVer); err != nil {
		return err
	}
	ap := &a.Params
	for _, f := range []struct {
		name string
		v    int64
	}{{"replMin", ap.ReplMin}, {"replMax", ap.ReplMax}, {"shardTarget", ap.ShardTarget}, {"epsilon", ap.Epsilon}} {
		if err := checkNonNeg("params.", f.name, f.v); err != nil {
			return err
		}
	}
	if ap.ReplMin > ap.ReplMax {
		return malformed("params.replMin", "%d is greater than replMax %d", ap.ReplMin, ap.ReplMax)
	}
	if len(a.Overrides) > MaxOverrides {
		return tooLarge("overrides (entries)", len(a.Overrides), MaxOverrides)
	}
	for i := range a.Overrides {
		o := &a.Overrides[i]
		p := fmt.Sprintf("overrides[%d].", i)
		if err := checkNonNeg(p, "shard", o.Shard); err != nil {
			return err
		}
		if i > 0 && a.Overrides[i-1].Shard >= o.Shard {
			return malformed(p+"shard", "overrides not in strictly ascending order of shard")
		}
		if err := checkPeerSet(p, "pin", o.Pin, MaxOverridePeers); err != nil {
			return err
		}
		if err := checkPeerSet(p, "exclude", o.Exclude, MaxOverridePeers); err != nil {
			return err
		}
		if j, ok := intersect(o.Pin, o.Exclude); ok {
			return malformed(fmt.Sprintf("%sexclude[%d]", p, j), "peer is also pinned")
		}
	}
	if a.Log != nil {
		return checkLink("", "log", *a.Log)
	}
	return nil
}

// intersect reports the index in b of an element of a (both ascending).
func intersect(a, b [][]byte) (int, bool) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := bytes.Compare(a[i], b[j]); {
		case c == 0:
			return j, true
		case c < 0:
			i++
		default:
			j++
		}
	}
	return 0, false
}

func checkAck(a *Ack) error { return checkAckAt("", a) }

func checkAckAt(p string, a *Ack) error {
	if err := checkVersion(a.Version); err != nil {
		return err
	}
	if err := checkPeer(p, "cluster", a.Cluster); err != nil {
		return err
	}
	if err := checkPeer(p, "peer", a.Peer); err != nil {
		return err
	}
	if err := checkLink(p, "head", a.Head); err != nil {
		return err
	}
	if err := checkNonNeg(p, "seq", a.Seq); err != nil {
		return err
	}
	if err := checkNonNeg(p, "shard", a.Shard); err != nil {
		return err
	}
	if len(a.Digest) == 0 {
		return malformed(p+"digest", "empty")
	}
	if len(a.Digest) > MaxDigestLen {
		return tooLarge(p+"digest (bytes)", len(a.Digest), MaxDigestLen)
	}
	if err := checkNonNeg(p, "bytes", a.Bytes); err != nil {
		return err
	}
	if a.State != StateStored && a.State != StateReleased {
		return malformed(p+"state", "%q is neither %q nor %q", truncate(a.State), StateStored, StateReleased)
	}
	return checkNonNeg(p, "time", a.Time)
}

func checkSignedAck(s *SignedAck) error { return checkSignedAckAt("", s) }

func checkSignedAckAt(p string, s *SignedAck) error {
	if err := checkAckAt(p+"ack.", &s.Ack); err != nil {
		return err
	}
	return checkSignature(p+"sig.", &s.Sig)
}

func checkAudit(a *Audit) error { return checkAuditAt("", a) }

func checkAuditAt(p string, a *Audit) error {
	if err := checkAuditVersion(a.Version); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		id   []byte
	}{{"cluster", a.Cluster}, {"auditor", a.Auditor}, {"holder", a.Holder}} {
		if err := checkPeer(p, f.name, f.id); err != nil {
			return err
		}
	}
	if err := checkLink(p, "head", a.Head); err != nil {
		return err
	}
	if err := checkNonNeg(p, "seq", a.Seq); err != nil {
		return err
	}
	if err := checkNonNeg(p, "shard", a.Shard); err != nil {
		return err
	}
	if len(a.Digest) == 0 {
		return malformed(p+"digest", "empty")
	}
	if len(a.Digest) > MaxDigestLen {
		return tooLarge(p+"digest (bytes)", len(a.Digest), MaxDigestLen)
	}
	if len(a.Nonce) != NonceLen {
		return malformed(p+"nonce", "%d bytes, want %d", len(a.Nonce), NonceLen)
	}
	if err := checkNonNeg(p, "samples", a.Samples); err != nil {
		return err
	}
	if err := checkText(p, "reason", a.Reason, MaxReasonLen); err != nil {
		return err
	}
	switch a.Result {
	case ResultPass:
		if a.Reason != "" {
			return malformed(p+"reason", "a pass has no reason")
		}
	case ResultFail:
		if a.Reason == "" {
			return malformed(p+"reason", "a fail needs a reason")
		}
	default:
		return malformed(p+"result", "%q is neither %q nor %q", truncate(a.Result), ResultPass, ResultFail)
	}
	return checkNonNeg(p, "time", a.Time)
}

func checkSignedAudit(s *SignedAudit) error { return checkSignedAuditAt("", s) }

func checkSignedAuditAt(p string, s *SignedAudit) error {
	if err := checkAuditAt(p+"audit.", &s.Audit); err != nil {
		return err
	}
	return checkSignature(p+"sig.", &s.Sig)
}

func checkOffer(o *Offer) error { return checkOfferAt("", o) }

func checkOfferAt(p string, o *Offer) error {
	if err := checkVersion(o.Version); err != nil {
		return err
	}
	if err := checkPeer(p, "cluster", o.Cluster); err != nil {
		return err
	}
	if err := checkPeer(p, "peer", o.Peer); err != nil {
		return err
	}
	if err := checkNonNeg(p, "capacity", o.Capacity); err != nil {
		return err
	}
	if err := checkNonNeg(p, "free", o.Free); err != nil {
		return err
	}
	if err := checkText(p, "agent", o.Agent, MaxAgentLen); err != nil {
		return err
	}
	if len(o.Addrs) > MaxAddrs {
		return tooLarge(p+"addrs (entries)", len(o.Addrs), MaxAddrs)
	}
	for i, a := range o.Addrs {
		if len(a) == 0 {
			return malformed(p+index("addrs", i), "empty address")
		}
		if len(a) > MaxAddrLen {
			return tooLarge(p+index("addrs", i)+" (bytes)", len(a), MaxAddrLen)
		}
	}
	if err := checkText(p, "nickname", o.Nickname, MaxNicknameLen); err != nil {
		return err
	}
	if err := checkText(p, "domain", o.Domain, MaxDomainLen); err != nil {
		return err
	}
	return checkNonNeg(p, "time", o.Time)
}

func checkSignedOffer(s *SignedOffer) error {
	if err := checkOfferAt("offer.", &s.Offer); err != nil {
		return err
	}
	return checkSignature("sig.", &s.Sig)
}

// truncate shortens untrusted text quoted in an error message.
func truncate(s string) string {
	const n = 32
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
