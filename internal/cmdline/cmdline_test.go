package cmdline

import (
	"bytes"
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
