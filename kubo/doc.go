// Package kubo talks to an existing kubo (go-ipfs) daemon through its RPC
// API (POST /api/v0/...) and, built on that, keeps a follower's pins in
// that daemon instead of the embedded block store.
//
// # Client
//
// Client covers the few commands pinfold needs: id, version, swarm
// connect, pin add (with its progress stream), pin rm, pin ls, dag stat
// and repo stat. It uses net/http only. Every call takes a context; a
// reply that is not one JSON value is bounded (ClientOptions.MaxResponse),
// and each value of a streamed reply is bounded (ClientOptions.MaxLine).
// An error kubo reports, as its JSON {"Message": ...} body or as the
// X-Stream-Error trailer of a stream, comes back as an *Error whose
// message is kubo's; errors.Is(err, ErrCommand) holds for it.
//
// # Store
//
// Store keeps a follower's pins in kubo. Fetch connects kubo to the peers
// that serve the content (the follower's cluster peers: curators and other
// holders), pins the root recursively under the follower's pin name (so
// `ipfs pin ls --names` shows which pins are pinfold's) and sizes the DAG
// with dag stat; Kept asks pin ls; Release unpins, but only pins carrying
// the follower's name, never a pin the user made; Usage is the sum of the
// dag stat sizes of the follower's pins. kubo's own garbage collector, not
// pinfold, deletes the blocks of released pins.
package kubo
