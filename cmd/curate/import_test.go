package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/curator"
)

func TestParsePinLine(t *testing.T) {
	const c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	for _, tc := range []struct {
		line string
		name string
		size int64
		err  string // empty: no error
	}{
		{c, "", 0, ""},
		{c + " 1234", "", 1234, ""},
		{c + " report.pdf", "report.pdf", 0, ""},
		{c + " my report 2GiB", "my report", 2 << 30, ""},
		{c + " my report 1.5 KiB", "my report 1.5 KiB", 0, ""}, // a unit alone is a word of the name
		{c + " name -12", "", 0, `size "-12" is negative`},
		{c + " -12", "", 0, `size "-12" is negative`},
		{c + " name 12XB", "", 0, `size "12XB"`},
		{c + " 3d-model", "3d-model", 0, ""},
		{c + " v2", "v2", 0, ""},
		{c + "\tname with spaces 2019\t500", "name with spaces 2019", 500, ""},
		{c + "\tname 2019", "name 2019", 0, ""},
		{c + "\t\t500", "", 500, ""},
		{c + "\tname\tlots", "", 0, `size "lots"`},
		{c + "\tname\t-1", "", 0, "negative"},
		{c + "\ta\tb\tc", "", 0, "4 tab-separated fields"},
		{`{"cid": "` + c + `", "name": "x", "size": 5}`, "x", 5, ""},
	} {
		pr, ok, err := parsePinLine(tc.line)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want one containing %q", tc.line, err, tc.err)
			}
		case err != nil || !ok || pr.CID != c || pr.Name != tc.name || pr.Size != tc.size:
			t.Errorf("%q: %+v ok %v err %v; want name %q size %d", tc.line, pr, ok, err, tc.name, tc.size)
		}
	}
	if _, ok, err := parsePinLine("  # a comment"); ok || err != nil {
		t.Errorf("comment: ok %v err %v", ok, err)
	}
}

// TestImportMalformedSizeNamesLine: the import stops at a malformed size
// with its line number, before sending the batch it is in.
func TestImportMalformedSizeNamesLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.txt")
	const c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	if err := os.WriteFile(path, []byte("# pins\n"+c+" a 10\n"+c+" name -12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	var stderr bytes.Buffer
	g := &globals{stdout: &bytes.Buffer{}, stderr: &stderr}
	// No daemon listens there: the line is refused before anything is sent.
	err := importPins(cmd, g, &curator.Client{Base: "http://127.0.0.1:1"}, path, 100, true)
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), `"-12" is negative`) {
		t.Fatalf("import: %v, want an error at line 3 naming the size", err)
	}
}
