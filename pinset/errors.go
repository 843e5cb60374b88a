package pinset

import "errors"

// Errors returned by this package, wrapped with detail; test with errors.Is.
var (
	// ErrInvalidPin: a pin given to Add or EncodePin is outside its domain
	// (the message names the field).
	ErrInvalidPin = errors.New("pinset: invalid pin")
	// ErrMalformed: stored or received bytes are not a valid record, key or
	// broadcast. Malformed CRDT values are skipped by readers and counted.
	ErrMalformed = errors.New("pinset: malformed")
	// ErrUntrustedAuthor refuses a CRDT broadcast whose signed author is
	// not in the trust set (or that carries no signature).
	ErrUntrustedAuthor = errors.New("pinset: broadcast author not trusted")
	// ErrNotFound: no pin with that CID.
	ErrNotFound = errors.New("pinset: pin not found")
	// ErrReadOnly: a write on a follower replica. Followers never write to
	// the CRDT; only curators do.
	ErrReadOnly = errors.New("pinset: read-only replica (follower)")
	// ErrClosed: the set was closed.
	ErrClosed = errors.New("pinset: closed")
	// ErrInvalidHead: a CRDT head CID given to Feed, CaughtUp or WaitFor
	// is not a go-ds-crdt block CID (CIDv1, dag-pb, sha2-256).
	ErrInvalidHead = errors.New("pinset: invalid CRDT head")
	// ErrBusy: too many heads are already waiting to be processed.
	ErrBusy = errors.New("pinset: too many pending heads")
	// ErrPartial: a walk over a remote delta chain stopped part-way (a
	// block could not be fetched, or a crash cut it short), so the replica
	// holds merged deltas that no CRDT head covers yet. Snapshot refuses
	// until the walk resumes and completes.
	ErrPartial = errors.New("pinset: a CRDT walk stopped part-way")
	// ErrConfig: a Config field is out of range (the message names it).
	ErrConfig = errors.New("pinset: invalid config")
)
