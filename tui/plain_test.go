package tui

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pinfold/pinfold/follower"
)

func TestPrintFollower(t *testing.T) {
	var b bytes.Buffer
	if err := PrintFollower(&b, followerFixture(), now); err != nil {
		t.Fatal(err)
	}
	checkPlain(t, b.String())
	golden(t, "plain_follower", b.String())

	b.Reset()
	if err := PrintFollower(&b, follower.Status{Cluster: "mirror", Why: "no verified head yet"}, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "plain_follower_empty", b.String())
}

func TestPrintCurator(t *testing.T) {
	var b bytes.Buffer
	if err := PrintCurator(&b, curatorFixture(), now); err != nil {
		t.Fatal(err)
	}
	checkPlain(t, b.String())
	golden(t, "plain_curator", b.String())
}

func checkPlain(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "\x1b") {
		t.Fatalf("escape codes in plain output:\n%q", s)
	}
}
