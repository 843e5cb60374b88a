package p2p

import "errors"

// Sentinel errors. Callers test them with errors.Is; the package wraps them
// with detail (the field, the topic, the peer).
var (
	// ErrInvalidConfig is wrapped by every Config.Validate and JSON error.
	ErrInvalidConfig = errors.New("p2p: invalid config")

	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("p2p: node closed")

	// ErrListen: the host cannot listen on one of its listen addresses
	// (the port is in use, the address is not this host's).
	ErrListen = errors.New("p2p: cannot listen")

	// ErrRunning is returned by Run when the node is already running.
	ErrRunning = errors.New("p2p: node already running")

	// ErrTooLarge rejects a message over its topic's size limit, whether
	// received from a peer or about to be published.
	ErrTooLarge = errors.New("p2p: message too large")

	// ErrRateLimited drops a message from a peer that exceeded its topic's
	// rate limit. Such messages are ignored, not rejected: the forwarding
	// peer may be relaying others' traffic in good faith.
	ErrRateLimited = errors.New("p2p: peer rate limited")

	// ErrGraylisted drops every message of a peer whose score fell below
	// the graylist threshold: too many of its messages were over budget or
	// rejected. It is read again once its blame decays.
	ErrGraylisted = errors.New("p2p: peer graylisted")

	// errNoAddrs: a kept member to dial has no known address, and the
	// cluster DHT (if any) found none.
	errNoAddrs = errors.New("p2p: no address known, none found in the cluster dht")

	// ErrValidatorPanic replaces a panic raised by a topic validator; the
	// message is rejected and the process keeps running.
	ErrValidatorPanic = errors.New("p2p: validator panicked")

	// ErrPeersFile is wrapped by errors reading or writing the remembered
	// peers file.
	ErrPeersFile = errors.New("p2p: peers file")

	// ErrDHTDisabled is returned by the DHT methods when Config.DHT.Mode
	// is off.
	ErrDHTDisabled = errors.New("p2p: dht disabled")

	// ErrRecordInvalid is wrapped by PutRecord when the DHT's validator
	// refuses the record (bad signature, wrong name, expired, malformed).
	ErrRecordInvalid = errors.New("p2p: dht record invalid")

	// ErrRecordNotFound is wrapped by GetRecord when no DHT peer holds a
	// valid record for the name.
	ErrRecordNotFound = errors.New("p2p: dht record not found")
)
