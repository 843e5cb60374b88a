package publish

import "errors"

// Sentinel errors. Every error this package returns for a bad record wraps
// exactly one of them (test with errors.Is); where boxo/ipns reported the
// problem, its own sentinel (ipns.ErrSignature, ipns.ErrRecordSize, ...) is
// wrapped too.
var (
	// ErrInvalidConfig: a RecordConfig field is out of range.
	ErrInvalidConfig = errors.New("publish: invalid config")

	// ErrTooLarge: the record or record file exceeds ipns.MaxRecordSize.
	ErrTooLarge = errors.New("publish: record too large")

	// ErrMalformed: the bytes are not a well-formed IPNS record in the shape
	// pinfold accepts (bad protobuf or dag-cbor, unknown fields, non-canonical
	// encoding, missing or inconsistent fields, negative TTL, ...).
	ErrMalformed = errors.New("publish: malformed record")

	// ErrBadName: the cluster name given to verify against does not embed an
	// ed25519 public key, so nothing can be verified against it.
	ErrBadName = errors.New("publish: cluster name has no inline public key")

	// ErrBadSignature: the record is not signed by the cluster key (wrong
	// cluster name, wrong key, or altered bytes).
	ErrBadSignature = errors.New("publish: record signature invalid")

	// ErrBadValue: the record's value is not /ipfs/<CIDv1 dag-cbor sha2-256>
	// in canonical string form, or a head CID given to BuildRecord is not one.
	ErrBadValue = errors.New("publish: record value is not /ipfs/<CIDv1 dag-cbor>")

	// ErrSeqRange: a sequence number above math.MaxInt64 given to
	// BuildRecord, or a negative Sequence in a record (IPNS stores the
	// sequence as a dag-cbor integer, which boxo handles as int64).
	ErrSeqRange = errors.New("publish: sequence out of range")

	// ErrExpired: the record's EOL is before now.
	ErrExpired = errors.New("publish: record expired")

	// ErrNoRecord: Select was given no record that passed verification.
	ErrNoRecord = errors.New("publish: no valid record")

	// ErrHeadMismatch: the record points at a different head than the one
	// it is checked against.
	ErrHeadMismatch = errors.New("publish: record does not point at this head")

	// ErrSeqMismatch: the record's sequence differs from the seq of the
	// head it points at.
	ErrSeqMismatch = errors.New("publish: record sequence differs from head seq")
)
