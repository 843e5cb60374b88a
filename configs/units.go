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
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("want a size string like \"500GiB\" or a byte count")
		}
		if n < 0 {
			return fmt.Errorf("size %d is negative", n)
		}
		*s = Size(n)
		return nil
	}
	v, err := ParseSize(text)
	if err != nil {
		return err
	}
	*s = v
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
