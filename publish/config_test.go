package publish

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultRecordConfig(t *testing.T) {
	c := DefaultRecordConfig()
	if c.Validity != 48*time.Hour || c.TTL != time.Minute {
		t.Errorf("DefaultRecordConfig = %+v, want validity 48h, TTL 1m", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}

func TestRecordConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   RecordConfig
		field string // "" if valid
	}{
		{"defaults", DefaultRecordConfig(), ""},
		{"zero TTL", RecordConfig{Validity: time.Hour}, ""},
		{"TTL equal to validity", RecordConfig{Validity: time.Hour, TTL: time.Hour}, ""},
		{"zero validity", RecordConfig{TTL: 0}, "publish.validity must be > 0"},
		{"negative validity", RecordConfig{Validity: -time.Second}, "publish.validity must be > 0"},
		{"negative TTL", RecordConfig{Validity: time.Hour, TTL: -1}, "publish.ttl must be >= 0"},
		{"TTL beyond validity", RecordConfig{Validity: time.Hour, TTL: 2 * time.Hour}, "publish.ttl must be <= publish.validity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			err := tt.cfg.Validate()
			if tt.cfg != before {
				t.Error("Validate changed the config")
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %q", err, tt.field)
			}
		})
	}
}

func TestRecordConfigJSON(t *testing.T) {
	b, err := json.Marshal(DefaultRecordConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"validity":"48h0m0s","ttl":"1m0s"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}

	tests := []struct {
		name string
		in   string
		want RecordConfig
		err  string // substring of the error, "" if none
	}{
		{"round trip", `{"validity":"48h0m0s","ttl":"1m0s"}`, DefaultRecordConfig(), ""},
		{"partial keeps defaults", `{"ttl":"30s"}`, RecordConfig{Validity: 48 * time.Hour, TTL: 30 * time.Second}, ""},
		{"empty object keeps defaults", `{}`, DefaultRecordConfig(), ""},
		{"human units", `{"validity":"168h","ttl":"0s"}`, RecordConfig{Validity: 168 * time.Hour}, ""},
		{"bad duration", `{"validity":"two days"}`, RecordConfig{}, "publish.validity"},
		{"bad ttl", `{"ttl":"1 minute"}`, RecordConfig{}, "publish.ttl"},
		{"number instead of string", `{"ttl":60}`, RecordConfig{}, "publish"},
		{"unknown field", `{"validty":"1h"}`, RecordConfig{}, "validty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultRecordConfig()
			err := json.Unmarshal([]byte(tt.in), &c)
			if tt.err != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Unmarshal = %v, want ErrInvalidConfig mentioning %q", err, tt.err)
				}
				if c != DefaultRecordConfig() {
					t.Errorf("failed Unmarshal changed the config to %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("Unmarshal = %+v, want %+v", c, tt.want)
			}
		})
	}
}
