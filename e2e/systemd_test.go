package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnits checks the units in dist/systemd: every ExecStart is a
// command line the built binaries accept (run with --help, so nothing
// starts), with the unit's Environment; and, where systemd-analyze is
// installed, that systemd accepts the units and rates their sandboxing
// exposure at most 2.0 ("OK"; 10 is a service with no sandbox at all).
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	units, err := filepath.Glob("../dist/systemd/*.service")
	if err != nil || len(units) != 2 {
		t.Fatalf("dist/systemd holds %v (%v), want curate.service and follow@.service", units, err)
	}
	dir := t.TempDir()
	var checked []string
	for _, u := range units {
		name := filepath.Base(u)
		instance := strings.Replace(name, "@.", "@mirror.", 1)
		exec1, env := readUnit(t, u)
		if len(exec1) < 2 || !strings.HasPrefix(exec1[0], "/usr/local/bin/") {
			t.Fatalf("%s: ExecStart %q", name, exec1)
		}
		args := exec1[1:]
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "%i", "mirror")
		}
		cmd := exec.Command(filepath.Join(bin, filepath.Base(exec1[0])), append(args, "--help")...)
		cmd.Env = os.Environ()
		for _, e := range env {
			k, _, _ := strings.Cut(e, "=")
			cmd.Env = append(cmd.Env, k+"="+filepath.Join(dir, k)) // the unit's variables, in a temp folder
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %s does not accept its command line: %v\n%s", name, strings.Join(exec1, " "), err, out)
		}

		// systemd's own checks, on a copy whose ExecStart names the built
		// binary (verify wants it to exist).
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			continue
		}
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, instance)
		if err := os.WriteFile(cp, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/", bin+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("systemd-analyze", "verify", cp).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", cp).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", name, err, out)
			continue
		}
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Errorf("systemd-analyze security %s: no exposure level in\n%s", name, out)
			continue
		}
		if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
			t.Errorf("%s: exposure level %.1f, want at most 2.0", name, level)
		}
		checked = append(checked, name+" "+string(m[1]))
	}
	t.Logf("systemd-analyze verified and rated: %v", checked)
}

// readUnit returns a unit's ExecStart, split on spaces, and its
// Environment assignments.
func readUnit(t *testing.T, path string) (execStart, env []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "ExecStart="):
			execStart = strings.Fields(strings.TrimPrefix(line, "ExecStart="))
		case strings.HasPrefix(line, "Environment="):
			env = append(env, strings.TrimPrefix(line, "Environment="))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return execStart, env
}
