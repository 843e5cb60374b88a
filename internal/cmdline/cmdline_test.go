package cmdline

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
)

func TestDescribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "m", Version: "v1.2.3"}}, "m v1.2.3, commit unknown, go1.26.0"},
		{"source tree", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "m", Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2025-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
		}}, "m (devel), commit 0123456789ab+dirty (2025-01-02T03:04:05Z), go1.26.0"},
		{"no version", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "m"}}, "m (devel), commit unknown, go1.26.0"},
	} {
		if got := describe(&tc.bi); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

type usageErr struct{ error }

func TestStrict(t *testing.T) {
	t.Parallel()
	build := func() (*cobra.Command, *bytes.Buffer) {
		root := &cobra.Command{Use: "prog", SilenceErrors: true, SilenceUsage: true}
		grp := &cobra.Command{Use: "pin", Short: "pins"}
		ran := false
		grp.AddCommand(&cobra.Command{Use: "ls", RunE: func(*cobra.Command, []string) error { ran = true; return nil }})
		root.AddCommand(grp)
		var out bytes.Buffer
		root.SetOut(&out)
		Strict(root, func(err error) error { return usageErr{err} })
		_ = ran
		return root, &out
	}
	for _, tc := range []struct {
		args    []string
		usage   bool
		mention string
	}{
		{[]string{"pin", "status"}, true, `unknown command "status" for "prog pin"; its commands: ls`},
		{[]string{"bogus"}, true, `unknown command "bogus" for "prog"`},
		{[]string{"pin"}, false, "Usage:"},
		{[]string{"pin", "ls"}, false, ""},
	} {
		root, out := build()
		root.SetArgs(tc.args)
		err := root.Execute()
		var ue usageErr
		if got := errors.As(err, &ue); got != tc.usage {
			t.Errorf("%v: usage error %v (err %v), want %v", tc.args, got, err, tc.usage)
		}
		text := out.String()
		if err != nil {
			text = err.Error()
		}
		if !strings.Contains(text, tc.mention) {
			t.Errorf("%v: %q does not mention %q", tc.args, text, tc.mention)
		}
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := Logger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "shard", 3)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["shard"] != 3.0 || rec["level"] != "WARN" {
		t.Errorf("json log line %v", rec)
	}
	buf.Reset()
	if l, err = Logger(&buf, "debug", "text"); err != nil {
		t.Fatal(err)
	}
	l.Debug("fetch", "shard", 3)
	if !strings.Contains(buf.String(), "level=DEBUG msg=fetch shard=3") {
		t.Errorf("text log line %q", buf.String())
	}
	for _, bad := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := Logger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("Logger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const before = 1 << 40 // the limit each case starts from
	for _, tc := range []struct {
		text     string
		fallback configs.Size
		env      string // GOMEMLIMIT
		want     int64  // the limit after; 0: an error, limit unchanged
	}{
		{"", 0, "", math.MaxInt64},                 // nothing set: no limit
		{"", 160 << 20, "", 160 << 20},             // config.json's memory
		{"", 160 << 20, "300MiB", before},          // GOMEMLIMIT, as the runtime read it
		{"256MiB", 160 << 20, "300MiB", 256 << 20}, // the flag wins
		{"0", 160 << 20, "", math.MaxInt64},        // the flag removes the limit
		{"1GiB", 0, "", 1 << 30},
		{"10MiB", 160 << 20, "", 0},
		{"lots", 0, "", 0},
		{"-5MiB", 0, "", 0},
	} {
		t.Setenv("GOMEMLIMIT", tc.env)
		debug.SetMemoryLimit(before)
		err := SetMemoryLimit(tc.text, tc.fallback, log)
		got := debug.SetMemoryLimit(-1)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("%q: no error", tc.text)
		case tc.want == 0 && got != before:
			t.Errorf("%q: limit changed to %d on error", tc.text, got)
		case tc.want != 0 && (err != nil || got != tc.want):
			t.Errorf("%q, fallback %s, GOMEMLIMIT %q: limit %d err %v, want %d", tc.text, tc.fallback, tc.env, got, err, tc.want)
		}
	}
}
