package kubo

import (
	"errors"
	"fmt"
)

// Sentinel errors; functions wrap them with the command or CID concerned.
var (
	// ErrInvalid: an argument is out of range (an API address that is not
	// http://host:port or a /ip4|ip6|dns/.../tcp/... multiaddr, an
	// undefined CID).
	ErrInvalid = errors.New("kubo: invalid argument")

	// ErrCommand: kubo answered a command with an error. The *Error in the
	// chain carries kubo's message.
	ErrCommand = errors.New("kubo: command failed")

	// ErrTooLarge: a reply, or one value of a streamed reply, is over the
	// client's limit. The rest of the reply is not read.
	ErrTooLarge = errors.New("kubo: reply over limit")

	// ErrMalformed: a reply is not the JSON the command returns.
	ErrMalformed = errors.New("kubo: malformed reply")

	// ErrStalled: a pin add made no progress for StoreConfig.StallTimeout
	// (no peer kubo is connected to sent the missing blocks).
	ErrStalled = errors.New("kubo: pin made no progress")

	// ErrNotPinned: the daemon says a pin pinfold made is missing.
	ErrNotPinned = errors.New("kubo: not pinned")
)

// Error is an error kubo returned for a command.
type Error struct {
	Command string // "pin/add"
	Status  int    // HTTP status; 200 when the error ended a stream
	Message string // kubo's message
	Code    int    // kubo's error code (0 normal, 1 client)
}

func (e *Error) Error() string {
	return fmt.Sprintf("kubo: %s: %s (HTTP %d)", e.Command, e.Message, e.Status)
}

// Unwrap makes errors.Is(err, ErrCommand) hold.
func (e *Error) Unwrap() error { return ErrCommand }
