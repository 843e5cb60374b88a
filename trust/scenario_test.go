package trust

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// Scenario files (testdata/*.txt) describe chains of heads and what
// verifying them must give. One command per line; '#' starts a comment.
//
//	rules trust k1+k2 [skew 5m] [maxchain 10]   genesis trust set and limits
//	now 24h                                     verifier clock, after the genesis time
//	G -> A -> B(rotate k1->k2) -> C(signer k1)  define heads (a new first name is a genesis)
//	G -> A -> ... : EXPECT                      define, then verify the last from genesis
//	verify C [from A]: EXPECT                   VerifyChain from A (or genesis) to C
//	head C parent B: EXPECT                     VerifyHead of C as the child of B
//	head G parent none: EXPECT                  ... as a genesis head
//	prefer A B: A                               Prefer between two verified heads
//	fork A B: fork|none                         CheckFork between two verified heads
//
// EXPECT is "ok", "ok N" (N heads verified) or "reject CODE" with CODE one
// of the names in sentinels (untrusted-signer, stale-seq, fork, ...).
//
// Head options, comma separated in parentheses:
//
//	signer K          signing key (default: first key of the parent's trust set)
//	trust K1+K2       the head's trust set (default: the parent's)
//	add K, remove K   change the parent's trust set
//	rotate K1->K2     replace K1 by K2
//	seq N, seq +N     seq, absolute or after the parent's (default +1)
//	dt D              time after the parent's, a Go duration, may be negative (default 1s)
//	cluster C         cluster key name (default "cluster")
//	parent P          link P instead of the head to the left (for "head" checks)
//	badsig            flip a bit of the signature
//
// Keys are generated from their names by a fixed-seed reader, so every run
// signs the same bytes.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := newScenario(t)
			for i, line := range strings.Split(string(data), "\n") {
				if text := strings.TrimSpace(stripComment(line)); text != "" {
					s.run(fmt.Sprintf("%s:%d", f, i+1), text)
				}
			}
			if s.checks == 0 {
				t.Fatal("scenario checks nothing")
			}
			t.Logf("%d checks", s.checks)
		})
	}
}

func stripComment(line string) string {
	if i := strings.Index(line, "#"); i >= 0 {
		return line[:i]
	}
	return line
}

type scenarioHead struct {
	cid   cid.Cid
	data  []byte
	sh    dag.SignedHead
	trust []string // key names
}

type scenario struct {
	t      *testing.T
	rules  Rules
	trust  []string // genesis trust names
	now    time.Time
	heads  map[string]*scenarioHead
	blocks blocks
	checks int
}

func newScenario(t *testing.T) *scenario {
	s := &scenario{t: t, heads: map[string]*scenarioHead{}, blocks: blocks{}, now: testNow}
	s.setRules([]string{"k1"})
	return s
}

func (s *scenario) setRules(trust []string) {
	s.trust = trust
	ids := make([]peer.ID, len(trust))
	for i, n := range trust {
		ids[i] = testID(s.t, n)
	}
	s.rules.Cluster = testID(s.t, "cluster")
	s.rules.Trust = ids
}

func (s *scenario) run(pos, text string) {
	s.t.Helper()
	fail := func(format string, args ...any) {
		s.t.Helper()
		s.t.Fatalf("%s: %s: %s", pos, text, fmt.Sprintf(format, args...))
	}
	cmd, expect, hasExpect := strings.Cut(text, ":")
	cmd, expect = strings.TrimSpace(cmd), strings.TrimSpace(expect)
	fields := strings.Fields(cmd)
	var got string
	switch {
	case fields[0] == "rules":
		for i := 1; i+1 < len(fields); i += 2 {
			switch fields[i] {
			case "trust":
				s.setRules(strings.Split(fields[i+1], "+"))
			case "skew":
				d, err := time.ParseDuration(fields[i+1])
				if err != nil {
					fail("%v", err)
				}
				s.rules.MaxSkew = d
			case "maxchain":
				n, err := strconv.Atoi(fields[i+1])
				if err != nil {
					fail("%v", err)
				}
				s.rules.MaxChain = n
			default:
				fail("unknown rules field %q", fields[i])
			}
		}
		return
	case fields[0] == "now":
		d, err := time.ParseDuration(fields[1])
		if err != nil {
			fail("%v", err)
		}
		s.now = time.UnixMilli(baseTime).Add(d)
		return
	case fields[0] == "verify":
		to := s.head(fail, fields[1])
		from := cid.Undef
		if len(fields) == 4 && fields[2] == "from" {
			from = s.head(fail, fields[3]).cid
		} else if len(fields) != 2 {
			fail("want: verify TO [from FROM]")
		}
		heads, err := VerifyChain(s.rules, from, to.cid, s.blocks.get, s.now)
		got = result(len(heads), err)
	case fields[0] == "head":
		if len(fields) != 4 || fields[2] != "parent" {
			fail("want: head NAME parent P|none")
		}
		h := s.head(fail, fields[1])
		var parent *Verified
		if fields[3] != "none" {
			v := s.verified(fail, fields[3])
			parent = &v
		}
		_, err := VerifyHead(s.rules, parent, h.data, s.now)
		got = result(1, err)
	case fields[0] == "prefer":
		a, b := s.verified(fail, fields[1]), s.verified(fail, fields[2])
		got = s.nameOf(Prefer(a, b).CID)
	case fields[0] == "fork":
		a, b := s.verified(fail, fields[1]), s.verified(fail, fields[2])
		got = "none"
		if CheckFork(a, b) != nil {
			got = "fork"
		}
	default:
		last := s.define(fail, cmd)
		if !hasExpect {
			return
		}
		heads, err := VerifyChain(s.rules, cid.Undef, last.cid, s.blocks.get, s.now)
		got = result(len(heads), err)
	}
	if !hasExpect {
		fail("missing ': EXPECT'")
	}
	s.checks++
	if !matches(expect, got) {
		s.t.Errorf("%s: %s\n  got:  %s\n  want: %s", pos, text, got, expect)
	}
}

// result renders a verification outcome in the scenario syntax.
func result(n int, err error) string {
	if err != nil {
		return "reject " + kind(err) + " (" + err.Error() + ")"
	}
	return "ok " + strconv.Itoa(n)
}

func matches(expect, got string) bool {
	if expect == "ok" {
		return strings.HasPrefix(got, "ok ")
	}
	if strings.HasPrefix(expect, "reject ") {
		return strings.HasPrefix(got, expect+" (")
	}
	return expect == got
}

func (s *scenario) head(fail func(string, ...any), name string) *scenarioHead {
	h, ok := s.heads[name]
	if !ok {
		fail("no head named %q", name)
	}
	return h
}

// verified verifies name from genesis and returns it as a Verified head.
func (s *scenario) verified(fail func(string, ...any), name string) Verified {
	h := s.head(fail, name)
	heads, err := VerifyChain(s.rules, cid.Undef, h.cid, s.blocks.get, s.now)
	if err != nil {
		fail("head %s does not verify: %v", name, err)
	}
	return heads[len(heads)-1]
}

func (s *scenario) nameOf(c cid.Cid) string {
	for n, h := range s.heads {
		if h.cid.Equals(c) {
			return n
		}
	}
	return c.String()
}

// define parses "A -> B(opts) -> C" and signs every head not yet defined.
func (s *scenario) define(fail func(string, ...any), chain string) *scenarioHead {
	var prev *scenarioHead
	for i, part := range splitChain(chain) {
		name, opts := part, ""
		if j := strings.Index(part, "("); j >= 0 {
			if !strings.HasSuffix(part, ")") {
				fail("unbalanced parentheses in %q", part)
			}
			name, opts = strings.TrimSpace(part[:j]), part[j+1:len(part)-1]
		}
		if h, ok := s.heads[name]; ok {
			if opts != "" {
				fail("head %s is already defined; options are only allowed on new heads", name)
			}
			prev = h
			continue
		}
		if i > 0 && prev == nil {
			fail("head %s has no parent", name)
		}
		prev = s.sign(fail, name, prev, opts)
	}
	return prev
}

func splitChain(chain string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(chain); i++ {
		switch {
		case chain[i] == '(':
			depth++
		case chain[i] == ')':
			depth--
		case depth == 0 && strings.HasPrefix(chain[i:], "->"):
			parts = append(parts, strings.TrimSpace(chain[start:i]))
			start = i + 2
			i++
		}
	}
	return append(parts, strings.TrimSpace(chain[start:]))
}

func (s *scenario) sign(fail func(string, ...any), name string, parent *scenarioHead, opts string) *scenarioHead {
	sp := spec{cluster: s.rules.Cluster}
	trust := slices.Clone(s.trust)
	authority := s.trust
	if parent != nil {
		trust = slices.Clone(parent.trust)
		authority = parent.trust
		sp.seq = parent.sh.Head.Seq + 1
		sp.time = parent.sh.Head.Time + 1000
		sp.parent = &parent.cid
	} else {
		sp.time = baseTime
	}
	signer := ""
	badsig := false
	for _, opt := range strings.Split(opts, ",") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		key, val, _ := strings.Cut(opt, " ")
		val = strings.TrimSpace(val)
		switch key {
		case "signer":
			signer = val
		case "trust":
			trust = strings.Split(val, "+")
		case "add":
			trust = append(trust, val)
		case "remove":
			trust = slices.DeleteFunc(trust, func(k string) bool { return k == val })
		case "rotate":
			from, to, ok := strings.Cut(val, "->")
			if !ok || !slices.Contains(trust, from) {
				fail("rotate %s: want K1->K2 with K1 in the trust set %v", val, trust)
			}
			trust = slices.DeleteFunc(trust, func(k string) bool { return k == from })
			trust = append(trust, to)
		case "seq":
			n, err := strconv.ParseInt(strings.TrimPrefix(val, "+"), 10, 64)
			if err != nil {
				fail("seq: %v", err)
			}
			if strings.HasPrefix(val, "+") && parent != nil {
				n += parent.sh.Head.Seq
			}
			sp.seq = n
		case "dt":
			d, err := time.ParseDuration(val)
			if err != nil {
				fail("dt: %v", err)
			}
			sp.time += d.Milliseconds() - 1000*boolInt(parent != nil)
		case "cluster":
			sp.cluster = testID(s.t, val)
		case "parent":
			if val == "none" {
				sp.parent = nil
			} else {
				sp.parent = &s.head(fail, val).cid
			}
		case "badsig":
			badsig = true
		default:
			fail("unknown head option %q", key)
		}
	}
	if signer == "" {
		if len(authority) == 0 {
			fail("head %s: no signer", name)
		}
		signer = slices.Min(authority)
	}
	sp.signer = testKey(s.t, signer)
	sp.trust = trustSet(s.t, trust...)
	c, data, sh := signHead(s.t, sp)
	if badsig {
		sh.Sig.Sig[7] ^= 0x10
		var err error
		if data, err = dag.EncodeSignedHead(sh); err != nil {
			fail("%v", err)
		}
		c = dag.CID(data)
	}
	h := &scenarioHead{cid: c, data: data, sh: sh, trust: slices.Compact(slices.Sorted(slices.Values(trust)))}
	s.heads[name] = h
	s.blocks[c] = data
	return h
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
