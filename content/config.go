package content

import (
	"fmt"
	"time"
)

// FetcherConfig tunes a Fetcher. Start from DefaultFetcherConfig; NewFetcher
// gives every field that is zero or negative its default, so a literal
// setting only some fields is fine. Validate checks a config read from a
// file without changing it.
type FetcherConfig struct {
	// Concurrency is how many blocks of one DAG Fetch requests at once.
	// With bitswap's 20 ms pause between want messages to a peer, a fetch
	// moves at most Concurrency blocks per round trip. Default: 16.
	Concurrency int

	// MaxBlocks bounds the distinct blocks of one DAG; a bigger DAG fails
	// with ErrTooLarge. A walk keeps about 150 bytes of memory per block.
	// Default: 10,000,000 (10 TiB of 1 MiB blocks).
	MaxBlocks int64

	// MaxLinks bounds the links of one block (a UnixFS file node has up to
	// 1024, a HAMT shard 256, a flat folder a few thousand). Default: 65536.
	MaxLinks int

	// MaxBytes bounds the bytes of one DAG; 0 means no limit beyond
	// MaxBlocks. Default: 0.
	MaxBytes int64

	// Attempts is how many times Fetch asks for one block before it fails
	// with ErrUnavailable. Default: 5.
	Attempts int

	// AttemptTimeout bounds one attempt at one block: bitswap waits for a
	// block as long as it is asked to, so this is what turns "no peer has
	// it" into a retry. Default: 1m.
	AttemptTimeout time.Duration

	// BackoffMin and BackoffMax bound the wait between two attempts at a
	// block: BackoffMin after the first failure, doubling up to BackoffMax.
	// Defaults: 1s, 30s.
	BackoffMin time.Duration
	BackoffMax time.Duration

	// StallTimeout is how long a Fetch may walk no block before it ends
	// its bitswap session and asks every connected peer again in a new
	// one, keeping each block's attempt deadline: a peer that claimed a
	// block and does not send it can hold a session up. Default: 8s.
	StallTimeout time.Duration
}

// DefaultFetcherConfig returns the defaults documented on each field.
func DefaultFetcherConfig() FetcherConfig {
	return FetcherConfig{
		Concurrency:    16,
		MaxBlocks:      10_000_000,
		MaxLinks:       1 << 16,
		MaxBytes:       0,
		Attempts:       5,
		AttemptTimeout: time.Minute,
		BackoffMin:     time.Second,
		BackoffMax:     30 * time.Second,
		StallTimeout:   8 * time.Second,
	}
}

// Validate reports the first field out of range, by its JSON-style path.
// Zero values are accepted (they mean the default).
func (c FetcherConfig) Validate() error {
	switch {
	case c.Concurrency < 0 || c.Concurrency > 1024:
		return fmt.Errorf("%w: content.concurrency is %d; want 0 to 1024", ErrInvalid, c.Concurrency)
	case c.MaxBlocks < 0:
		return fmt.Errorf("%w: content.max_blocks is %d; want >= 0", ErrInvalid, c.MaxBlocks)
	case c.MaxLinks < 0:
		return fmt.Errorf("%w: content.max_links is %d; want >= 0", ErrInvalid, c.MaxLinks)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: content.max_bytes is %d; want >= 0", ErrInvalid, c.MaxBytes)
	case c.Attempts < 0:
		return fmt.Errorf("%w: content.attempts is %d; want >= 0", ErrInvalid, c.Attempts)
	case c.AttemptTimeout < 0:
		return fmt.Errorf("%w: content.attempt_timeout is %s; want >= 0", ErrInvalid, c.AttemptTimeout)
	case c.StallTimeout < 0:
		return fmt.Errorf("%w: content.stall_timeout is %s; want >= 0", ErrInvalid, c.StallTimeout)
	case c.BackoffMin < 0 || c.BackoffMax < 0:
		return fmt.Errorf("%w: content.backoff_min and backoff_max must be >= 0", ErrInvalid)
	case c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax:
		return fmt.Errorf("%w: content.backoff_min (%s) must be <= backoff_max (%s)", ErrInvalid, c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// withDefaults replaces zero or negative fields by their defaults.
func (c FetcherConfig) withDefaults() FetcherConfig {
	d := DefaultFetcherConfig()
	if c.Concurrency <= 0 {
		c.Concurrency = d.Concurrency
	}
	if c.MaxBlocks <= 0 {
		c.MaxBlocks = d.MaxBlocks
	}
	if c.MaxLinks <= 0 {
		c.MaxLinks = d.MaxLinks
	}
	if c.MaxBytes < 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.Attempts <= 0 {
		c.Attempts = d.Attempts
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = d.AttemptTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = d.BackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = d.BackoffMax
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = d.StallTimeout
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	return c
}

func (c FetcherConfig) limits() walkLimits {
	return walkLimits{concurrency: c.Concurrency, maxBlocks: c.MaxBlocks, maxLinks: c.MaxLinks, maxBytes: c.MaxBytes}
}

// backoff is the wait after the given failed attempt (1-based).
func (c FetcherConfig) backoff(attempt int) time.Duration {
	d := c.BackoffMin
	for i := 1; i < attempt && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}
