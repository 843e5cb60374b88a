package audit

import "errors"

// Errors. Verify, the response decoder and the client wrap them with the
// path, the depth and the detail; test with errors.Is.
//
// Every error Verify returns means the holder failed the challenge: an
// honest holder of the blocks never causes one (see docs/audits.md). The
// network errors of Challenge (ErrBusy, ErrRefused, ErrTimeout and plain
// connection errors) mean there was no answer: the caller retries later and
// decides, by its own policy, when silence counts as failure.
var (
	// ErrWrongBlock: a block does not hash to the CID the path rule named.
	ErrWrongBlock = errors.New("audit: wrong block")
	// ErrPathTooShort: a path ends before the rule says it does.
	ErrPathTooShort = errors.New("audit: path too short")
	// ErrPathTooLong: a path goes on after the rule says it ends.
	ErrPathTooLong = errors.New("audit: path too long")
	// ErrBlockMissing: the holder said it does not have a block of a path.
	ErrBlockMissing = errors.New("audit: block missing")
	// ErrTooLarge: a challenge, response or block exceeds its limit.
	ErrTooLarge = errors.New("audit: over limit")
	// ErrMalformed: bytes that are not a valid challenge or response, or a
	// response with the wrong number of paths.
	ErrMalformed = errors.New("audit: malformed")
	// ErrInvalid: a challenge or config the caller built is not valid.
	ErrInvalid = errors.New("audit: invalid")

	// ErrBusy: the holder is already answering a challenge from this
	// auditor (one at a time per peer).
	ErrBusy = errors.New("audit: holder busy")
	// ErrRefused: the holder does not take challenges from this peer or for
	// this cluster.
	ErrRefused = errors.New("audit: refused")
	// ErrTimeout: no complete answer before the deadline.
	ErrTimeout = errors.New("audit: no answer before the deadline")
)
