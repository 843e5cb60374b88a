package kubo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func testCID(t testing.TB, i int) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte(fmt.Sprintf("block %d", i)), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func TestParseAPI(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"http://127.0.0.1:5001", "http://127.0.0.1:5001"},
		{"http://127.0.0.1:5001/", "http://127.0.0.1:5001"},
		{"127.0.0.1:5001", "http://127.0.0.1:5001"},
		{"https://kubo.example:443", "https://kubo.example:443"},
		{"/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"},
		{"/ip6/::1/tcp/5001", "http://[::1]:5001"},
		{"/dns4/localhost/tcp/5001/http", "http://localhost:5001"},
		{"ftp://127.0.0.1:5001", ""},
		{"http://127.0.0.1", ""},
		{"http://127.0.0.1:5001/api/v0", ""},
		{"/ip4/127.0.0.1/udp/5001", ""},
		{"/ip4/127.0.0.1", ""},
		{"/garbage", ""},
		{"", ""},
	} {
		got, err := ParseAPI(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseAPI(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseAPI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCommands(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	v, err := c.Version(ctx)
	if err != nil || v.Version != "0.39.0" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	id, err := c.ID(ctx)
	if err != nil || id.ID != "12D3KooWfake" || len(id.Addresses) != 1 {
		t.Fatalf("ID = %+v, %v", id, err)
	}
	rs, err := c.RepoStat(ctx)
	if err != nil || rs.RepoSize != 1234 || rs.StorageMax != 10000000000 {
		t.Fatalf("RepoStat = %+v, %v", rs, err)
	}
	a, b := testCID(t, 1), testCID(t, 2)
	var seen []int64
	if err := c.PinAdd(ctx, a, "pinfold/x", func(n int64) { seen = append(seen, n) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[1 3 3 7]" {
		t.Fatalf("progress %v, want the streamed values [1 3 3 7]", seen)
	}
	if name(f, a) != "pinfold/x" {
		t.Fatalf("pin name %q", name(f, a))
	}
	st, err := c.DAGStat(ctx, a)
	if err != nil || st != (DAGStat{Blocks: 7, Bytes: 7000}) {
		t.Fatalf("DAGStat = %+v, %v", st, err)
	}
	if _, err := c.DAGStat(ctx, b); !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), "could not find") {
		t.Fatalf("DAGStat of a missing DAG: %v; want kubo's message", err)
	}

	// One batch when all are pinned; one more request per CID when kubo
	// refuses the batch for one that is not.
	before := f.count("pin/ls")
	pins, err := c.PinLs(ctx, []cid.Cid{a})
	if err != nil || len(pins) != 1 || pins[a].Name != "pinfold/x" || f.count("pin/ls") != before+1 {
		t.Fatalf("PinLs = %v, %v after %d calls", pins, err, f.count("pin/ls")-before)
	}
	before = f.count("pin/ls")
	pins, err = c.PinLs(ctx, []cid.Cid{a, b})
	if err != nil || len(pins) != 1 || pins[a].CID != a || f.count("pin/ls") != before+3 {
		t.Fatalf("PinLs with one not pinned = %v, %v after %d calls", pins, err, f.count("pin/ls")-before)
	}
	var all []Pin
	if err := c.PinLsAll(ctx, "pinfold", func(p Pin) error { all = append(all, p); return nil }); err != nil || len(all) != 1 {
		t.Fatalf("PinLsAll = %v, %v", all, err)
	}
	if err := c.PinRm(ctx, a); err != nil {
		t.Fatal(err)
	}
	err = c.PinRm(ctx, a)
	var ke *Error
	if !errors.As(err, &ke) || ke.Message != "not pinned or pinned indirectly" || ke.Status != 500 || ke.Command != "pin/rm" {
		t.Fatalf("second PinRm: %v; want kubo's error", err)
	}
	for _, err := range []error{
		c.PinAdd(ctx, cid.Undef, "", nil), c.PinRm(ctx, cid.Undef),
		func() error { _, err := c.DAGStat(ctx, cid.Undef); return err }(),
		func() error { _, err := c.PinLs(ctx, []cid.Cid{cid.Undef}); return err }(),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("undefined CID: %v; want ErrInvalid", err)
		}
	}
}

// reply serves one fixed reply to every request.
func reply(t *testing.T, h http.HandlerFunc, opt ClientOptions) *Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	root := testCID(t, 1)
	for _, tc := range []struct {
		name  string
		h     http.HandlerFunc
		opt   ClientOptions
		call  func(*Client) error
		is    error
		inMsg string
	}{
		{
			name: "kubo error body",
			h:    func(w http.ResponseWriter, r *http.Request) { writeErr(w, 500, "invalid path \"x\"") },
			call: func(c *Client) error { _, err := c.Version(ctx); return err },
			is:   ErrCommand, inMsg: `kubo: version: invalid path "x" (HTTP 500)`,
		},
		{
			name: "client error status",
			h:    func(w http.ResponseWriter, r *http.Request) { writeErr(w, 400, "unknown option \"x\"") },
			call: func(c *Client) error { _, err := c.ID(ctx); return err },
			is:   ErrCommand, inMsg: "HTTP 400",
		},
		{
			name: "plain text error (unknown command)",
			h:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "404 page not found", 404) },
			call: func(c *Client) error { _, err := c.RepoStat(ctx); return err },
			is:   ErrCommand, inMsg: "404 page not found",
		},
		{
			name: "error in the trailer of a stream",
			h: func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				emit(w, map[string]any{"Progress": 2})
				w.Header().Set(streamErrHeader, "merkledag: not found")
			},
			call: func(c *Client) error { return c.PinAdd(ctx, root, "", func(int64) {}) },
			is:   ErrCommand, inMsg: "merkledag: not found",
		},
		{
			name: "error value in a stream",
			h: func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				emit(w, map[string]any{"Message": "context canceled", "Code": 0, "Type": "error"})
			},
			call: func(c *Client) error { return c.PinAdd(ctx, root, "", nil) },
			is:   ErrCommand, inMsg: "context canceled",
		},
		{
			name: "error in the trailer of a single reply",
			h: func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				w.Header().Set(streamErrHeader, "swarm closed")
			},
			call: func(c *Client) error { _, err := c.Version(ctx); return err },
			is:   ErrCommand, inMsg: "swarm closed",
		},
		{
			name: "stream ends without the pin",
			h: func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				emit(w, map[string]any{"Progress": 2})
			},
			call: func(c *Client) error { return c.PinAdd(ctx, root, "", nil) },
			is:   ErrMalformed,
		},
		{
			name: "not JSON",
			h:    func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) },
			call: func(c *Client) error { _, err := c.Version(ctx); return err },
			is:   ErrMalformed,
		},
		{
			name: "dag stat about another CID",
			h: func(w http.ResponseWriter, r *http.Request) {
				emit(w, map[string]any{"DagStats": []map[string]any{{"Cid": testCID(t, 9).String(), "Size": 1, "NumBlocks": 1}}})
			},
			call: func(c *Client) error { _, err := c.DAGStat(ctx, root); return err },
			is:   ErrMalformed,
		},
		{
			name: "oversized reply",
			h: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"Version":"%s"}`, strings.Repeat("x", 2000))
			},
			opt:  ClientOptions{MaxResponse: 1000},
			call: func(c *Client) error { _, err := c.Version(ctx); return err },
			is:   ErrTooLarge,
		},
		{
			name: "oversized stream value",
			h: func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				emit(w, map[string]any{"Progress": 1})
				emit(w, map[string]any{"Progress": 2, "Pad": strings.Repeat("x", 5000)})
				emit(w, map[string]any{"Pins": []string{root.String()}})
			},
			opt:  ClientOptions{MaxLine: 4096},
			call: func(c *Client) error { return c.PinAdd(ctx, root, "", func(int64) {}) },
			is:   ErrTooLarge,
		},
		{
			name: "endless oversized reply is cut",
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"ID":"`))
				chunk := []byte(strings.Repeat("y", 1<<16))
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			opt:  ClientOptions{MaxResponse: 1 << 20},
			call: func(c *Client) error { _, err := c.ID(ctx); return err },
			is:   ErrTooLarge,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(reply(t, tc.h, tc.opt))
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v; want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.inMsg) {
				t.Fatalf("error %q does not contain %q", err, tc.inMsg)
			}
		})
	}
}

func TestContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := reply(t, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		emit(w, map[string]any{"Progress": 1})
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}, ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int64, 1)
	done := make(chan error, 1)
	go func() { done <- c.PinAdd(ctx, testCID(t, 1), "", func(n int64) { got <- n }) }()
	if n := <-got; n != 1 {
		t.Fatalf("progress %d", n)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PinAdd after cancel: %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PinAdd did not return after its context was cancelled")
	}
}
