package publish

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	ipns_pb "github.com/ipfs/boxo/ipns/pb"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/boxo/util"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	basicnode "github.com/ipld/go-ipld-prime/node/basic"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"
)

// valuePrefix is the only namespace a pinfold record may point into.
const valuePrefix = "/ipfs/"

// Record is an IPNS record for a cluster head, as built by BuildRecord or
// verified by ParseRecord. Treat it as immutable.
type Record struct {
	Name ipns.Name     // cluster name the record was verified against
	Head cid.Cid       // the head it points at: value /ipfs/<Head>
	Seq  uint64        // IPNS sequence; equals the head's seq
	EOL  time.Time     // end of validity, UTC
	TTL  time.Duration // cache hint
	Raw  []byte        // the marshaled record (protobuf), exactly as verified
}

// ClusterName returns the IPNS name of a cluster key, which is the
// cluster's name.
func ClusterName(pub crypto.PubKey) (ipns.Name, error) {
	pid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return ipns.Name{}, fmt.Errorf("cluster name: %w", err)
	}
	return ipns.NameFromPeer(pid), nil
}

// BuildRecord builds and signs the IPNS record for head at seq: value
// /ipfs/<head>, sequence seq, EOL now+cfg.Validity, TTL cfg.TTL, with the
// V1-compatible signature boxo makes by default. head must be a CIDv1
// dag-cbor sha2-256 CID and seq at most math.MaxInt64. The record is parsed
// back (ParseRecord at now) before it is returned, so BuildRecord never
// returns a record that a follower would reject.
func BuildRecord(key crypto.PrivKey, head cid.Cid, seq uint64, now time.Time, cfg RecordConfig) (Record, error) {
	if key == nil {
		return Record{}, errors.New("build record: no cluster key")
	}
	if err := cfg.Validate(); err != nil {
		return Record{}, err
	}
	if err := checkHeadCID(head); err != nil {
		return Record{}, fmt.Errorf("build record: %w: %w", ErrBadValue, err)
	}
	if seq > math.MaxInt64 {
		return Record{}, fmt.Errorf("build record: %w: %d", ErrSeqRange, seq)
	}
	name, err := ClusterName(key.GetPublic())
	if err != nil {
		return Record{}, fmt.Errorf("build record: %w", err)
	}
	rec, err := ipns.NewRecord(key, path.FromCid(head), seq, now.Add(cfg.Validity), cfg.TTL)
	if err != nil {
		return Record{}, fmt.Errorf("build record for head %s: %w", head, err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		return Record{}, fmt.Errorf("build record for head %s: marshal: %w", head, err)
	}
	out, err := ParseRecord(raw, name, now)
	if err != nil {
		return Record{}, fmt.Errorf("build record for head %s: self-check: %w", head, err)
	}
	return out, nil
}

// ParseRecord unmarshals data as an IPNS record, verifies it against the
// cluster name at time now, and extracts what it says. Checks, in order:
//
//  1. size: 1 to ipns.MaxRecordSize bytes (ErrTooLarge, ErrMalformed);
//  2. ipns.UnmarshalRecord and ipns.ValidateWithName: SignatureV2 over the
//     dag-cbor Data by the key inlined in name, and the V1 protobuf fields,
//     when present, equal to their Data counterparts (ErrBadSignature,
//     ErrMalformed). boxo's own expiry verdict, made against the wall
//     clock, is set aside; step 5 decides expiry;
//  3. strict shape, beyond boxo: no unknown protobuf fields; canonical
//     protobuf encoding (re-marshaling gives back the same bytes); the V1
//     fields either all absent (V2-only record) or all present with a valid
//     SignatureV1 (ErrBadSignature), because boxo does not verify
//     SignatureV1 and would otherwise accept any bytes there; Data is
//     canonical dag-cbor with exactly the keys Value, Validity,
//     ValidityType, Sequence, TTL; Validity in canonical RFC 3339 form;
//     sequence <= math.MaxInt64; TTL >= 0 (ErrMalformed, ErrSeqRange);
//  4. value exactly /ipfs/<CID> with the CID in canonical string form,
//     version 1, codec dag-cbor, multihash sha2-256 (ErrBadValue);
//  5. expiry: now after EOL is ErrExpired (an EOL equal to now is valid).
//
// The returned Record's Raw is a copy of data.
func ParseRecord(data []byte, name ipns.Name, now time.Time) (Record, error) {
	pk, err := name.Peer().ExtractPublicKey()
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrBadName, err)
	}
	switch {
	case len(data) == 0:
		return Record{}, fmt.Errorf("%w: empty", ErrMalformed)
	case len(data) > ipns.MaxRecordSize:
		return Record{}, also(fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), ipns.MaxRecordSize), ipns.ErrRecordSize)
	}
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrMalformed, oneLine(err))
	}
	if err := ipns.ValidateWithName(rec, name); err != nil && !errors.Is(err, ipns.ErrExpiredRecord) {
		return Record{}, validationError(name, err)
	}
	f, err := strictFields(data, pk, name)
	if err != nil {
		return Record{}, err
	}
	head, err := parseValue(f.value)
	if err != nil {
		return Record{}, fmt.Errorf("%w: seq %d: %w", ErrBadValue, f.seq, err)
	}
	if now.After(f.eol) {
		return Record{}, also(fmt.Errorf("%w: seq %d, head %s: EOL %s is before now %s",
			ErrExpired, f.seq, head, util.FormatRFC3339(f.eol), util.FormatRFC3339(now)), ipns.ErrExpiredRecord)
	}
	return Record{
		Name: name,
		Head: head,
		Seq:  f.seq,
		EOL:  f.eol,
		TTL:  f.ttl,
		Raw:  bytes.Clone(data),
	}, nil
}

// CheckHead checks that rec points at the head with CID head and sequence
// seq. A follower calls it after fetching and verifying the head a record
// resolved to: the record's sequence must equal the head's seq, otherwise
// the record is rejected (ErrSeqMismatch), even if the head itself is
// valid. head must be the CID of the block actually verified, not one
// taken from the record.
func CheckHead(rec Record, head cid.Cid, seq uint64) error {
	if !rec.Head.Equals(head) {
		return fmt.Errorf("%w: record seq %d points at %s, not at %s", ErrHeadMismatch, rec.Seq, rec.Head, head)
	}
	if rec.Seq != seq {
		return fmt.Errorf("%w: record for head %s has sequence %d, the head has seq %d", ErrSeqMismatch, head, rec.Seq, seq)
	}
	return nil
}

// validationError maps an error from ipns.ValidateWithName to this
// package's sentinels, keeping boxo's error in the chain.
func validationError(name ipns.Name, err error) error {
	err = oneLine(err)
	switch {
	case errors.Is(err, ipns.ErrRecordSize):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, ipns.ErrSignature),
		errors.Is(err, ipns.ErrPublicKeyMismatch),
		errors.Is(err, ipns.ErrInvalidPublicKey),
		errors.Is(err, ipns.ErrPublicKeyNotFound):
		return fmt.Errorf("%w: not signed by the key of cluster %s: %w", ErrBadSignature, name, err)
	default:
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
}

// fields is what a record says, read from its signed dag-cbor Data.
type fields struct {
	value []byte
	seq   uint64
	eol   time.Time
	ttl   time.Duration
}

// Keys of the signed dag-cbor Data map, as the IPNS spec names them.
const (
	keyValue        = "Value"
	keyValidity     = "Validity"
	keyValidityType = "ValidityType"
	keySequence     = "Sequence"
	keyTTL          = "TTL"
)

// strictFields applies the checks of ParseRecord step 3 to a record that
// boxo has already validated, and returns its fields.
func strictFields(data []byte, pk crypto.PubKey, name ipns.Name) (fields, error) {
	var pb ipns_pb.IpnsRecord
	if err := proto.Unmarshal(data, &pb); err != nil {
		return fields{}, fmt.Errorf("%w: %w", ErrMalformed, oneLine(err))
	}
	if u := pb.ProtoReflect().GetUnknown(); len(u) > 0 {
		return fields{}, fmt.Errorf("%w: %d bytes of unknown protobuf fields", ErrMalformed, len(u))
	}
	canon, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb)
	if err != nil {
		return fields{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(canon, data) {
		return fields{}, fmt.Errorf("%w: non-canonical protobuf encoding", ErrMalformed)
	}
	if err := checkV1(&pb, pk, name); err != nil {
		return fields{}, err
	}
	return dataFields(pb.GetData())
}

// checkV1 requires the V1 fields to be all absent or all present with a
// valid SignatureV1. boxo has already checked that present V1 fields equal
// their Data counterparts; SignatureV1 is the one thing it leaves unchecked.
func checkV1(pb *ipns_pb.IpnsRecord, pk crypto.PubKey, name ipns.Name) error {
	present := []bool{
		pb.Value != nil, pb.SignatureV1 != nil, pb.ValidityType != nil,
		pb.Validity != nil, pb.Sequence != nil, pb.Ttl != nil,
	}
	n := 0
	for _, p := range present {
		if p {
			n++
		}
	}
	switch n {
	case 0:
		return nil // V2-only record
	case len(present):
	default:
		return fmt.Errorf("%w: %d of the 6 V1 fields present, want all or none", ErrMalformed, n)
	}
	// The V1 signed bytes, as boxo computes them: Value || Validity || the
	// validity type's name ("EOL").
	signed := bytes.Join([][]byte{pb.GetValue(), pb.GetValidity(), fmt.Append(nil, pb.GetValidityType())}, nil)
	ok, err := pk.Verify(signed, pb.GetSignatureV1())
	if err != nil || !ok {
		return fmt.Errorf("%w: SignatureV1 not made by the key of cluster %s", ErrBadSignature, name)
	}
	return nil
}

// dataFields decodes the signed dag-cbor Data strictly and extracts the
// record's fields.
func dataFields(data []byte) (fields, error) {
	nb := basicnode.Prototype.Map.NewBuilder()
	if err := (dagcbor.DecodeOptions{AllowLinks: false}).Decode(nb, bytes.NewReader(data)); err != nil {
		return fields{}, fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	n := nb.Build()
	var canon bytes.Buffer
	if err := dagcbor.Encode(n, &canon); err != nil {
		return fields{}, fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	if !bytes.Equal(canon.Bytes(), data) {
		return fields{}, fmt.Errorf("%w: data is not canonical dag-cbor", ErrMalformed)
	}
	if n.Length() != 5 {
		return fields{}, fmt.Errorf("%w: data has %d keys, want exactly %s, %s, %s, %s, %s",
			ErrMalformed, n.Length(), keyValue, keyValidity, keyValidityType, keySequence, keyTTL)
	}
	var f fields
	var err error
	if f.value, err = lookupBytes(n, keyValue); err != nil {
		return fields{}, err
	}
	validity, err := lookupBytes(n, keyValidity)
	if err != nil {
		return fields{}, err
	}
	vt, err := lookupInt(n, keyValidityType)
	if err != nil {
		return fields{}, err
	}
	seq, err := lookupInt(n, keySequence)
	if err != nil {
		return fields{}, err
	}
	ttl, err := lookupInt(n, keyTTL)
	if err != nil {
		return fields{}, err
	}
	if vt != int64(ipns.ValidityEOL) {
		return fields{}, fmt.Errorf("%w: validity type %d, want %d (EOL)", ErrMalformed, vt, ipns.ValidityEOL)
	}
	if f.eol, err = util.ParseRFC3339(string(validity)); err != nil {
		return fields{}, fmt.Errorf("%w: validity: %w", ErrMalformed, err)
	}
	if util.FormatRFC3339(f.eol) != string(validity) {
		return fields{}, fmt.Errorf("%w: validity %q is not canonical RFC 3339 (UTC, nanoseconds trimmed)", ErrMalformed, validity)
	}
	if seq < 0 {
		return fields{}, fmt.Errorf("%w: Sequence is negative (%d)", ErrSeqRange, seq)
	}
	f.seq = uint64(seq)
	if ttl < 0 {
		return fields{}, fmt.Errorf("%w: negative TTL %d ns", ErrMalformed, ttl)
	}
	f.ttl = time.Duration(ttl)
	return f, nil
}

func lookupBytes(n datamodel.Node, key string) ([]byte, error) {
	v, err := n.LookupByString(key)
	if err != nil {
		return nil, fmt.Errorf("%w: data: %s missing: %w", ErrMalformed, key, err)
	}
	b, err := v.AsBytes()
	if err != nil {
		return nil, fmt.Errorf("%w: data: %s is %s, want bytes", ErrMalformed, key, v.Kind())
	}
	return b, nil
}

func lookupInt(n datamodel.Node, key string) (int64, error) {
	v, err := n.LookupByString(key)
	if err != nil {
		return 0, fmt.Errorf("%w: data: %s missing: %w", ErrMalformed, key, err)
	}
	i, err := v.AsInt()
	if err != nil {
		return 0, fmt.Errorf("%w: data: %s is %s, want int", ErrMalformed, key, v.Kind())
	}
	return i, nil
}

// parseValue checks that value is exactly /ipfs/<CID> in canonical form
// and returns the CID. Its errors carry no sentinel; the caller adds
// ErrBadValue.
func parseValue(value []byte) (cid.Cid, error) {
	s := string(value)
	if !strings.HasPrefix(s, valuePrefix) {
		return cid.Undef, fmt.Errorf("value %q does not start with %s", truncate(s), valuePrefix)
	}
	c, err := cid.Decode(s[len(valuePrefix):])
	if err != nil {
		return cid.Undef, fmt.Errorf("value %q: %w", truncate(s), err)
	}
	if err := checkHeadCID(c); err != nil {
		return cid.Undef, fmt.Errorf("value %q: %w", truncate(s), err)
	}
	if valuePrefix+c.String() != s {
		return cid.Undef, fmt.Errorf("value %q is not in canonical form %q", truncate(s), valuePrefix+c.String())
	}
	return c, nil
}

// checkHeadCID accepts only CIDs of head blocks: v1, dag-cbor, sha2-256.
// Its errors carry no sentinel; callers add ErrBadValue.
func checkHeadCID(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("undefined CID")
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("CID %s is version %d, codec %#x, multihash %#x/%d; want version 1, dag-cbor (0x71), sha2-256 (0x12/32)",
			c, p.Version, p.Codec, p.MhType, p.MhLength)
	}
	return nil
}

// alsoErr is err that also matches extra in errors.Is, without extra's
// text in the message: for conditions this package detects itself that
// boxo has a sentinel for (ErrExpired also is ipns.ErrExpiredRecord).
type alsoErr struct {
	err, extra error
}

func also(err, extra error) error { return alsoErr{err, extra} }
func (e alsoErr) Error() string   { return e.err.Error() }
func (e alsoErr) Unwrap() []error { return []error{e.err, e.extra} }

// oneLine is err with the newlines of errors.Join (which boxo uses)
// replaced by ": ", so that messages stay on one line. errors.Is and
// errors.As see through it.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "\n") {
		return err
	}
	return lineErr{strings.ReplaceAll(msg, "\n", ": "), err}
}

type lineErr struct {
	msg string
	err error
}

func (e lineErr) Error() string { return e.msg }
func (e lineErr) Unwrap() error { return e.err }

// truncate shortens untrusted text quoted in an error message.
func truncate(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
