package kubo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKubo speaks the shapes of kubo 0.39's RPC API for the commands the
// client uses: JSON replies, chunked streams of values, errors as a JSON
// body with a 500 status or, once a stream started, as the X-Stream-Error
// trailer. It keeps recursive pins with their names in memory.
type fakeKubo struct {
	mu       sync.Mutex
	pins     map[string]string // CID -> pin name
	sizes    map[string]DAGStat
	calls    []string // commands, in order
	connects []string // swarm connect arguments
	progress []int64  // Progress values pin add streams
	stall    bool     // pin add streams empty progress until cancelled
	failDial bool     // swarm connect fails
}

func newFake(t *testing.T) (*fakeKubo, *Client) {
	f := &fakeKubo{pins: map[string]string{}, sizes: map[string]DAGStat{}, progress: []int64{1, 3, 3, 7}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeKubo) count(cmd string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == cmd {
			n++
		}
	}
	return n
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"Message": msg, "Code": 0, "Type": "error"})
}

// startStream writes the headers of a channel reply.
func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Trailer", streamErrHeader)
	w.Header().Set("X-Chunked-Output", "1")
	w.WriteHeader(http.StatusOK)
}

func emit(w http.ResponseWriter, v any) {
	json.NewEncoder(w).Encode(v)
	w.(http.Flusher).Flush()
}

func (f *fakeKubo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "405 - Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	cmd := strings.TrimPrefix(r.URL.Path, "/api/v0/")
	q := r.URL.Query()
	args := q["arg"]
	f.mu.Lock()
	f.calls = append(f.calls, cmd)
	f.mu.Unlock()
	switch cmd {
	case "version":
		emit(w, map[string]string{"Version": "0.39.0", "Commit": "", "Repo": "18", "System": "amd64/linux", "Golang": "go1.25.5"})
	case "id":
		emit(w, map[string]any{"ID": "12D3KooWfake", "Addresses": []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWfake"}, "AgentVersion": "kubo/0.39.0/"})
	case "repo/stat":
		emit(w, map[string]any{"RepoSize": 1234, "StorageMax": 10000000000, "NumObjects": 0, "RepoPath": "", "Version": ""})
	case "swarm/connect":
		f.mu.Lock()
		f.connects = append(f.connects, args...)
		fail := f.failDial
		f.mu.Unlock()
		if fail {
			writeErr(w, 500, "connect "+args[0]+" failure: dial refused")
			return
		}
		emit(w, map[string]any{"Strings": []string{"connect " + args[0] + " success"}})
	case "pin/add":
		f.pinAdd(w, r, args[0], q.Get("name"), q.Get("progress") == "true")
	case "pin/rm":
		f.mu.Lock()
		_, ok := f.pins[args[0]]
		delete(f.pins, args[0])
		f.mu.Unlock()
		if !ok {
			writeErr(w, 500, "not pinned or pinned indirectly")
			return
		}
		emit(w, map[string]any{"Pins": args})
	case "pin/ls":
		f.pinLs(w, args, q.Get("name"))
	case "dag/stat":
		f.mu.Lock()
		st, ok := f.sizes[args[0]]
		f.mu.Unlock()
		if !ok {
			writeErr(w, 500, "error traversing DAG: block was not found locally (offline): ipld: could not find "+args[0])
			return
		}
		emit(w, map[string]any{"UniqueBlocks": st.Blocks, "TotalSize": st.Bytes, "Ratio": 1,
			"DagStats": []map[string]any{{"Cid": args[0], "Size": st.Bytes, "NumBlocks": st.Blocks}}})
	default:
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

func (f *fakeKubo) pinAdd(w http.ResponseWriter, r *http.Request, c, name string, progress bool) {
	startStream(w)
	f.mu.Lock()
	steps, stall := f.progress, f.stall
	f.mu.Unlock()
	if progress {
		for _, p := range steps {
			emit(w, map[string]any{"Progress": p})
		}
		if stall {
			for {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
					emit(w, map[string]any{}) // kubo's Progress 0, omitted
				}
			}
		}
	}
	f.mu.Lock()
	f.pins[c] = name
	if _, ok := f.sizes[c]; !ok {
		f.sizes[c] = DAGStat{Blocks: 7, Bytes: 7000}
	}
	f.mu.Unlock()
	emit(w, map[string]any{"Pins": []string{c}})
}

func (f *fakeKubo) pinLs(w http.ResponseWriter, args []string, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(args) == 0 {
		startStream(w)
		for c, n := range f.pins {
			if strings.Contains(n, name) {
				emit(w, map[string]string{"Cid": c, "Name": n, "Type": "recursive"})
			}
		}
		return
	}
	started := false
	for _, a := range args {
		n, ok := f.pins[a]
		if !ok {
			msg := fmt.Sprintf("path '%s' is not pinned", a)
			if !started {
				writeErr(w, 500, msg)
				return
			}
			w.Header().Set(streamErrHeader, msg)
			return
		}
		if !started {
			startStream(w)
			started = true
		}
		emit(w, map[string]string{"Cid": a, "Name": n, "Type": "recursive"})
	}
}

// pin returns the name of c's pin, and whether it is pinned.
func (f *fakeKubo) pin(c string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.pins[c]
	return n, ok
}

func (f *fakeKubo) setPin(c, name string, st DAGStat) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins[c], f.sizes[c] = name, st
}

func (f *fakeKubo) connected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.connects...)
}

func name(f *fakeKubo, c interface{ String() string }) string {
	n, _ := f.pin(c.String())
	return n
}
