package content

import "errors"

// Sentinel errors. Functions wrap them with the CID or path concerned;
// test with errors.Is.
var (
	// ErrMalformed: a block could not be decoded, a link is not a CID
	// this node accepts (unknown or insecure hash, oversized identity), or
	// a decoder panicked. Permanent: retrying fetches the same bytes.
	ErrMalformed = errors.New("content: malformed block")

	// ErrTooLarge: a DAG has more blocks than FetcherConfig.MaxBlocks, a
	// block more links than FetcherConfig.MaxLinks, or a DAG more bytes than
	// FetcherConfig.MaxBytes.
	ErrTooLarge = errors.New("content: DAG over limit")

	// ErrUnavailable: a block was not found after FetcherConfig.Attempts
	// attempts (no connected peer sent it in time).
	ErrUnavailable = errors.New("content: block unavailable")

	// ErrUnsupported: Import met a file that is neither a regular file, a
	// folder nor a symbolic link (a device, socket or pipe).
	ErrUnsupported = errors.New("content: unsupported file type")

	// ErrEmpty: Import with PerEntry was given a folder with no entries.
	ErrEmpty = errors.New("content: folder has no entries")

	// ErrCorrupt: a record of the Fetcher in the datastore cannot be
	// decoded or contradicts the DAG it describes.
	ErrCorrupt = errors.New("content: corrupt record")

	// ErrInvalid: an argument is out of range (a zero CID, a negative
	// size, a chunk size over the limit).
	ErrInvalid = errors.New("content: invalid argument")
)
