package configs

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Size is a byte count written as "500GiB", "40MiB" or "123456" in JSON.
// It marshals to the largest IEC unit that divides it exactly, so a value
// read back is always the value written.
type Size int64

var iecUnits = []struct {
	suffix string
	bytes  int64
}{
	{"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
}

// String formats s exactly, e.g. "500GiB" or "1000".
func (s Size) String() string {
	if s > 0 {
		for _, u := range iecUnits {
			if int64(s)%u.bytes == 0 {
				return strconv.FormatInt(int64(s)/u.bytes, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// ParseSize reads "500GiB", "1.5 TB", "80MiB" or a plain byte count.
func ParseSize(text string) (Size, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return 0, fmt.Errorf("empty size")
	}
	if strings.HasPrefix(text, "-") {
		return 0, fmt.Errorf("size %q is negative", text)
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return Size(n), nil // exact, where the float parser below would round
	}
	n, err := humanize.ParseBytes(text)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a byte count like 500GiB or 40MiB", text)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", text)
	}
	return Size(n), nil
}

func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s *Size) UnmarshalJSON(b []byte) error {
	return unmarshalCount(b, s, "size", `"500GiB" or a byte count`, ParseSize)
}

// unmarshalCount reads a JSON string with parse, or a non-negative JSON
// number as it is, into dst; what and want name it in errors.
func unmarshalCount[T ~int64](b []byte, dst *T, what, want string, parse func(string) (T, error)) error {
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("want a %s string like %s", what, want)
		}
		if n < 0 {
			return fmt.Errorf("%s %d is negative", what, n)
		}
		*dst = T(n)
		return nil
	}
	v, err := parse(text)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// Duration is a time.Duration written as "30s" or "48h0m0s" in JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return fmt.Errorf("want a duration string like \"30s\"")
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("duration %q: want a value like 30s, 5m or 48h", text)
	}
	*d = Duration(v)
	return nil
}

// Rate is a bandwidth in bytes per second, written as "5MB/s" in JSON;
// 0 means unlimited.
type Rate int64

// MinRate is the smallest limit a follower accepts (64KiB/s), so that a
// typo cannot stall it.
const MinRate Rate = 64 << 10

var rateUnits = []struct {
	suffix string
	bytes  int64
}{
	{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3},
}

// String formats r exactly in the largest unit that divides it, e.g.
// "5MB/s", "64KiB/s" or "1234B/s"; 0 is "unlimited".
func (r Rate) String() string {
	if r <= 0 {
		if r == 0 {
			return "unlimited"
		}
		return strconv.FormatInt(int64(r), 10) + "B/s"
	}
	for _, u := range rateUnits {
		if int64(r)%u.bytes == 0 {
			return strconv.FormatInt(int64(r)/u.bytes, 10) + u.suffix + "/s"
		}
	}
	return strconv.FormatInt(int64(r), 10) + "B/s"
}

// ParseRate reads a bandwidth: a byte count per second ("5MB/s",
// "512KiB/s", "1.5MB", "250000"), a bit rate ("40Mbit/s", "100Mbps"),
// or "0" / "unlimited" for no limit. It does not check MinRate.
func ParseRate(text string) (Rate, error) {
	t := strings.TrimSpace(text)
	switch strings.ToLower(t) {
	case "":
		return 0, fmt.Errorf("empty rate")
	case "0", "unlimited":
		return 0, nil
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("rate %q is negative", text)
	}
	t = strings.TrimSpace(strings.TrimSuffix(t, "/s"))
	bits := false
	lower := strings.ToLower(t)
	for _, suffix := range []string{"bit", "bps"} {
		if strings.HasSuffix(lower, suffix) {
			t, bits = strings.TrimSpace(t[:len(t)-len(suffix)]), true
			break
		}
	}
	if t == "" || (bits && !strings.ContainsAny(t[len(t)-1:], "0123456789kKmMgGtT")) {
		return 0, fmt.Errorf("rate %q: want a rate like 5MB/s, 512KiB/s or 40Mbit/s", text)
	}
	s, err := ParseSize(t)
	if err != nil {
		return 0, fmt.Errorf("rate %q: want a rate like 5MB/s, 512KiB/s or 40Mbit/s", text)
	}
	if bits {
		s /= 8
	}
	return Rate(s), nil
}

func (r Rate) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

func (r *Rate) UnmarshalJSON(b []byte) error {
	return unmarshalCount(b, r, "rate", `"5MB/s" or bytes per second`, ParseRate)
}

// ValidateLimit checks a bandwidth limit: 0 (unlimited) or at least
// MinRate.
func (r Rate) ValidateLimit(field string) error {
	if r != 0 && r < MinRate {
		return invalid(field, "is %s; want 0 (unlimited) or at least %s", r, MinRate)
	}
	return nil
}
