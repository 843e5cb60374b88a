// Package curator is the curator's side of a cluster: its home folder
// (keys, configs, the block store holding the signed heads) and, built on
// it, the services a curator runs.
//
// # Sizes of pins stored elsewhere
//
// A pin request without a size (0) is walked before it is added: the
// daemon dials the providers the request names (PinOptions.From), walks
// the pin's whole DAG through its node's block service (its own block
// store first, then bitswap from every connected peer: providers,
// followers, other curators), and adds the pin with the exact size
// content.DAGStat counts. The walk stores every block it fetches in the
// curator's block store and leaves them there: the curator then serves
// the pin to its followers like content it imported with AddContent,
// which is what lets followers that cannot reach the original provider
// fetch it. Blocks of a walk that fails stay too (nothing else references
// them; a retry resumes from them). Nothing collects walked blocks: a
// curator that must not store a pin's content gives its size (and leaves
// Check off, since a check walks, and so stores, the DAG too).
//
// A walk is bounded by PinOptions.Timeout (default 10 minutes) and
// PinOptions.MaxBlocks (default content's 10,000,000). Its errors wrap
// ErrUnreachable (the timeout passed; the message says how many blocks
// and bytes were walked), content.ErrMalformed (a block that does not
// decode, named) or content.ErrTooLarge; the HTTP API answers them with
// 504, 422 and 413.
//
// A pin request with a size and PinOptions.Check is added at once; the
// daemon walks it later in the background, one pin at a time, and
// records the outcome (SizeCheck). A size that differs from the walked
// one is logged and shown ("mismatch: walked N") but never changed: the
// size is part of the signed pinset and decides the pin's shard, so
// fixing it is the curator's decision (`curate pin rm` then `curate pin
// add` without --size). Pending and unreachable checks are persisted and
// queued again when the daemon starts.
//
// The walks are in sizecheck.go: AddPinsWith, PinOptions, SizeCheck.
package curator
