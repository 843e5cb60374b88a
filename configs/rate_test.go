package configs

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"5MB/s":      5_000_000,
		"5 MB/s":     5_000_000,
		"5MiB/s":     5 << 20,
		"512KiB/s":   512 << 10,
		"64kB/s":     64_000,
		"1.5MB/s":    1_500_000,
		"5MB":        5_000_000,
		"250000":     250_000,
		"250000/s":   250_000,
		"40Mbit/s":   5_000_000,
		"40 Mbit/s":  5_000_000,
		"100Mbps":    12_500_000,
		"1Gbit/s":    125_000_000,
		"0":          0,
		"unlimited":  0,
		" Unlimited": 0,
	}
	for text, want := range good {
		got, err := ParseRate(text)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", text, got, err, want)
		}
	}
	for _, bad := range []string{"", "  ", "-5MB/s", "fast", "5MB/h", "/s", "bit/s", "5MBbit/s", "5 XB/s", "99999999999PB/s"} {
		if got, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", bad, got)
		}
	}
}

func TestRateRoundTrip(t *testing.T) {
	for r, want := range map[Rate]string{0: "unlimited", 5_000_000: "5MB/s", 5 << 20: "5MiB/s", 64 << 10: "64KiB/s",
		64_000: "64kB/s", 1234: "1234B/s", 2e9: "2GB/s", 1_024_000: "1000KiB/s"} {
		if r.String() != want {
			t.Errorf("Rate(%d).String() = %q, want %q", r, r.String(), want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		r := Rate(rng.Int64N(1 << 40))
		if rng.IntN(2) == 0 {
			r = Rate(rng.Int64N(1<<20)) * Rate([]int64{1, 1e3, 1 << 10, 1e6, 1 << 20}[rng.IntN(5)])
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Rate
		if err := json.Unmarshal(b, &back); err != nil || back != r {
			t.Fatalf("rate %d -> %s -> %d, %v", r, b, back, err)
		}
	}
	var r Rate
	if err := json.Unmarshal([]byte(`250000`), &r); err != nil || r != 250000 {
		t.Errorf("number: %d, %v", r, err)
	}
	for _, bad := range []string{`-1`, `true`, `"lots"`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func TestFollowerBandwidth(t *testing.T) {
	tests := []struct {
		json  string
		up    Rate
		down  Rate
		field string // "" means valid
	}{
		{`{}`, 0, 0, ""},
		{`{"max_upload":"5MB/s","max_download":"40Mbit/s"}`, 5_000_000, 5_000_000, ""},
		{`{"max_upload":"64KiB/s","max_download":"unlimited"}`, 64 << 10, 0, ""},
		{`{"max_upload":"64kB/s"}`, 0, 0, "follower.max_upload"},
		{`{"max_download":"1000"}`, 0, 0, "follower.max_download"},
		{`{"max_download":"-5MB/s"}`, 0, 0, "negative"},
		{`{"max_upload":"fast"}`, 0, 0, "fast"},
	}
	for _, tt := range tests {
		f := DefaultFollower()
		base, _ := json.Marshal(f)
		var m map[string]any
		_ = json.Unmarshal(base, &m)
		var extra map[string]any
		if err := json.Unmarshal([]byte(tt.json), &extra); err != nil {
			t.Fatal(err)
		}
		for k, v := range extra {
			m[k] = v
		}
		data, _ := json.Marshal(m)
		err := Decode(data, &f)
		if tt.field != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("%s: Decode = %v, want an error naming %s", tt.json, err, tt.field)
			}
			continue
		}
		if err != nil || f.MaxUpload != tt.up || f.MaxDownload != tt.down {
			t.Errorf("%s: Decode = %v, limits %s, %s; want %s, %s", tt.json, err, f.MaxUpload, f.MaxDownload, tt.up, tt.down)
		}
	}
	// The default config file shows the setting.
	b, _ := json.Marshal(DefaultFollower())
	if !strings.Contains(string(b), `"max_upload":"unlimited"`) || !strings.Contains(string(b), `"max_download":"unlimited"`) {
		t.Errorf("default follower JSON %s does not show the limits", b)
	}
}
