package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// RecordConfig sets the lifetime of the IPNS records a curator publishes.
// On disk (JSON) durations are strings in time.ParseDuration form:
//
//	{"validity": "48h0m0s", "ttl": "1m0s"}
type RecordConfig struct {
	// Validity is how long a record stays valid after it is built: its EOL
	// is now + Validity. Curators republish well before it runs out; a
	// follower offline longer than Validity with no curator online cannot
	// resolve the cluster through IPNS (a record file still works while it
	// has not expired). Must be > 0.
	Validity time.Duration

	// TTL is the IPNS cache hint: how long resolvers may serve a cached
	// record before looking for a newer one. Must be >= 0 and <= Validity.
	TTL time.Duration
}

// DefaultRecordConfig returns the defaults: records valid for 48 hours,
// cached for one minute.
func DefaultRecordConfig() RecordConfig {
	return RecordConfig{
		Validity: 48 * time.Hour, // long enough to survive a curator's weekend offline
		TTL:      time.Minute,    // a new head is visible within a minute of being published
	}
}

// Validate reports the first field out of range, naming it by its config
// path (publish.validity, publish.ttl). It changes nothing.
func (c RecordConfig) Validate() error {
	if c.Validity <= 0 {
		return fmt.Errorf("%w: publish.validity must be > 0, got %s", ErrInvalidConfig, c.Validity)
	}
	if c.TTL < 0 {
		return fmt.Errorf("%w: publish.ttl must be >= 0, got %s", ErrInvalidConfig, c.TTL)
	}
	if c.TTL > c.Validity {
		return fmt.Errorf("%w: publish.ttl must be <= publish.validity, got ttl %s > validity %s",
			ErrInvalidConfig, c.TTL, c.Validity)
	}
	return nil
}

type recordConfigJSON struct {
	Validity *string `json:"validity,omitempty"`
	TTL      *string `json:"ttl,omitempty"`
}

// MarshalJSON writes durations as strings ("48h0m0s").
func (c RecordConfig) MarshalJSON() ([]byte, error) {
	v, t := c.Validity.String(), c.TTL.String()
	return json.Marshal(recordConfigJSON{Validity: &v, TTL: &t})
}

// UnmarshalJSON reads durations written as strings. Fields that are absent
// keep their current value, so decoding onto DefaultRecordConfig() fills
// in defaults. Unknown fields are rejected. It does not call Validate.
func (c *RecordConfig) UnmarshalJSON(data []byte) error {
	var aux recordConfigJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("%w: publish: %w", ErrInvalidConfig, err)
	}
	out := *c
	if aux.Validity != nil {
		d, err := time.ParseDuration(*aux.Validity)
		if err != nil {
			return fmt.Errorf("%w: publish.validity: %w", ErrInvalidConfig, err)
		}
		out.Validity = d
	}
	if aux.TTL != nil {
		d, err := time.ParseDuration(*aux.TTL)
		if err != nil {
			return fmt.Errorf("%w: publish.ttl: %w", ErrInvalidConfig, err)
		}
		out.TTL = d
	}
	*c = out
	return nil
}
