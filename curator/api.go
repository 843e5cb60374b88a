package curator

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/metrics"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
)

// Status is what GET /v1/status returns.
type Status struct {
	Cluster    string            `json:"cluster"`
	ClusterID  string            `json:"cluster_id"`
	Peer       string            `json:"peer"`
	Addrs      []string          `json:"addrs"`
	Head       *HeadInfo         `json:"head,omitempty"`
	Pins       int64             `json:"pins"`
	Bytes      int64             `json:"bytes"`
	Shards     int               `json:"shards"`
	Members    int               `json:"members"`
	Curators   []string          `json:"curators"`
	Peers      int               `json:"peers"`
	PendingLog int               `json:"pending_log"`
	Rejected   map[string]uint64 `json:"rejected"`
	// Refused groups the recent refusals of every topic (and of head
	// verification) by topic and reason, with the peers they came from.
	Refused []p2p.RefusalGroup `json:"refused,omitempty"`
	// RecentHeads are the heads this curator published, newest first.
	RecentHeads []PublishedHead `json:"recent_heads,omitempty"`
	// RecentAcks are the ACKs and releases it received, newest first.
	RecentAcks []ReceivedAck `json:"recent_acks,omitempty"`
	// SizeChecks counts the pins whose DAG was walked or is queued, by
	// SizeCheck state.
	SizeChecks map[string]int `json:"size_checks,omitempty"`
	// DHT is the state of publishing the IPNS record to the DHT; nil
	// when the DHT is off.
	DHT *DHTInfo `json:"dht,omitempty"`
}

// DHTInfo is the DHT side of a curator's status.
type DHTInfo struct {
	Mode  string `json:"mode"`
	Peers int    `json:"peers"` // in the routing table
	// LastPut is when the record (of head LastSeq) was last put without
	// error; zero before the first.
	LastPut time.Time `json:"last_put,omitzero"`
	LastSeq uint64    `json:"last_seq,omitempty"`
	// LastError is why the newest put failed; empty once one succeeds.
	LastError string `json:"last_error,omitempty"`
	// Next is when the next put is due at the latest (a new record is put
	// at once).
	Next time.Time `json:"next_put,omitzero"`
}

// HeadInfo describes a verified head.
type HeadInfo struct {
	CID    string    `json:"cid"`
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Signer string    `json:"signer"`
}

// PinRequest is one pin in POST /v1/pins (JSON lines).
type PinRequest struct {
	CID     string            `json:"cid"`
	Name    string            `json:"name,omitempty"`
	Size    int64             `json:"size"`
	ReplMin int64             `json:"replication_min,omitempty"`
	ReplMax int64             `json:"replication_max,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

// PinResult is the answer to POST /v1/pins.
type PinResult struct {
	Added   int `json:"added"`
	Present int `json:"present"` // already pinned: skipped, so imports resume without duplicates
	// Walked lists the new pins that came without a size, with the size
	// their walked DAG has.
	Walked []WalkedPin `json:"walked,omitempty"`
}

// maxPinBatch bounds the pins one POST may carry.
const maxPinBatch = 100_000

func (d *Daemon) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", d.handleStatus)
	mux.HandleFunc("POST /v1/pins", d.handleAddPins)
	mux.HandleFunc("GET /v1/pins", d.handleListPins)
	mux.HandleFunc("DELETE /v1/pins/{cid}", d.handleRemovePin)
	mux.HandleFunc("POST /v1/pins/remove", d.handleRemovePins)
	mux.HandleFunc("GET /v1/members", d.handleMembers)
	mux.HandleFunc("GET /v1/shards", d.handleShards)
	mux.HandleFunc("POST /v1/add", d.handleAdd)
	mux.HandleFunc("POST /v1/members/{peer}/{action}", d.handleDecide)
	mux.HandleFunc("POST /v1/publish", d.handlePublish)
	mux.HandleFunc("POST /v1/trust", d.handleTrust)
	mux.HandleFunc("POST /v1/record", d.handleRecord)
	mux.HandleFunc("GET /v1/pins/{cid}", d.handlePinStatus)
	metrics.Mount(mux, d.metrics, d.opt.Pprof)
	token := d.l.Config.APIToken
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				httpError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Status returns the daemon's status.
func (d *Daemon) Status() Status {
	st := d.pins.Stats()
	s := Status{
		Cluster: d.l.Cluster.Name, ClusterID: d.l.Cluster.ID, Peer: d.id.String(),
		Pins: st.Pins, Bytes: st.Bytes, Shards: len(st.Shards),
		Peers: len(d.node.Peers()), PendingLog: d.pending.len(),
	}
	for _, a := range d.node.Addrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	if v, ok := d.heads.Newest(); ok {
		s.Head = &HeadInfo{CID: v.CID.String(), Seq: v.Head.Seq, Time: time.UnixMilli(v.Head.Time).UTC(), Signer: peer.ID(v.Sig.Signer).String()}
		for _, t := range v.Head.Trust {
			s.Curators = append(s.Curators, peer.ID(t).String())
		}
	}
	for _, m := range d.members.List() {
		if m.State == StateActive || m.State == StateOffline {
			s.Members++
		}
	}
	_, s.Rejected = d.heads.Rejections()
	for reason, n := range d.node.RejectionCounts() {
		s.Rejected[reason] += n
	}
	for reason, n := range d.book.Refused() {
		s.Rejected[reason] += n
	}
	d.refusedMu.Lock()
	for reason, n := range d.refusedOffers {
		s.Rejected[reason] += n
	}
	d.refusedMu.Unlock()
	s.Refused = p2p.GroupRejections(append(d.node.Rejections(), d.heads.TopicRejections()...))
	s.RecentHeads, s.RecentAcks = d.recent.snapshot()
	if n := d.checks.counts(); len(n) > 0 {
		s.SizeChecks = n
	}
	if d.node.DHTEnabled() {
		info := d.dht.get()
		info.Mode, info.Peers = d.l.Config.DHT.Mode, d.node.DHTPeers()
		s.DHT = &info
	}
	return s
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) { writeJSON(w, d.Status()) }

func (d *Daemon) handleAddPins(w http.ResponseWriter, r *http.Request) {
	opt, err := pinOptionsFromQuery(r.URL.Query())
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	sc := bufio.NewScanner(io.LimitReader(r.Body, 256<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var reqs []PinRequest
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var pr PinRequest
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pr); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("line %d: %w", line, err))
			return
		}
		reqs = append(reqs, pr)
		if len(reqs) > maxPinBatch {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("more than %d pins in one request", maxPinBatch))
			return
		}
	}
	if err := sc.Err(); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	res, err := d.AddPinsWith(r.Context(), reqs, opt)
	if err != nil {
		code := http.StatusBadRequest
		switch {
		case errors.Is(err, ErrUnreachable):
			code = http.StatusGatewayTimeout
		case errors.Is(err, content.ErrTooLarge):
			code = http.StatusRequestEntityTooLarge
		case errors.Is(err, content.ErrMalformed):
			code = http.StatusUnprocessableEntity
		}
		httpError(w, code, err)
		return
	}
	writeJSON(w, res)
}

// AddPins checks and adds pins, assigning each new one a shard; pins
// already present are skipped. It is AddPinsWith with no options: pins
// without a size are walked (see sizecheck.go), given sizes are not
// checked.
func (d *Daemon) AddPins(ctx context.Context, reqs []PinRequest) (PinResult, error) {
	return d.AddPinsWith(ctx, reqs, PinOptions{})
}

// AddPinsWith checks and adds pins, assigning each new one a shard; pins
// already present are skipped. New pins without a size are walked first,
// one after the other, each bounded by opt (a walk that fails fails the
// whole batch, nothing added); with opt.Check, new pins with a size are
// queued for a background check.
func (d *Daemon) AddPinsWith(ctx context.Context, reqs []PinRequest, opt PinOptions) (PinResult, error) {
	if err := opt.validate(); err != nil {
		return PinResult{}, err
	}
	walked, err := d.walkUnsized(ctx, reqs, opt)
	if err != nil {
		return PinResult{}, err
	}
	d.addMu.Lock() // shard assignment reads the fill that the previous Add left
	defer d.addMu.Unlock()
	var res PinResult
	now := d.now()
	pins := make([]pinset.Pin, 0, len(reqs))
	seen := make(map[cid.Cid]bool, len(reqs))
	for i, pr := range reqs {
		c, err := cid.Decode(pr.CID)
		if err != nil {
			return res, fmt.Errorf("pin %d: cid %q: %w", i+1, pr.CID, err)
		}
		if pr.Size < 0 {
			return res, fmt.Errorf("pin %d (%s): negative size", i+1, c)
		}
		if seen[c] {
			res.Present++
			continue
		}
		seen[c] = true
		has, err := d.pins.Has(ctx, c)
		if err != nil {
			return res, err
		}
		if has {
			res.Present++
			continue
		}
		size := pr.Size
		if size == 0 {
			st, ok := walked[c]
			if !ok { // pinned when walkUnsized looked, removed since
				return res, fmt.Errorf("pin %d (%s): removed while its DAG was walked; add it again", i+1, c)
			}
			size = st.Bytes
		}
		pins = append(pins, pinset.Pin{CID: c, Name: pr.Name, Size: size, ReplMin: pr.ReplMin, ReplMax: pr.ReplMax, Added: now, Meta: pr.Meta})
	}
	if err := d.assignShards(ctx, pins); err != nil {
		return res, err
	}
	n, err := d.pins.Add(ctx, pins)
	res.Added = n
	if err != nil {
		return res, err
	}
	if n > 0 {
		d.poke()
	}
	if res.Walked, err = d.recordSizes(ctx, pins, walked, opt); err != nil {
		return res, err
	}
	return res, nil
}

// errListLimit ends a listing at its limit.
var errListLimit = errors.New("list limit reached")

// handleListPins streams pins as lines in shard, then CID order: JSON
// (PinJSON) by default, or ?format=tsv for the text curate pin ls prints.
// ?after=<shard>/<cid> resumes after that pin (the last one a client
// received); ?limit=N stops after N pins. A listing that fails midway
// ends with an error line: {"error": "..."} in JSON, "#error\t..." in TSV.
func (d *Daemon) handleListPins(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var cur *pinset.Cursor
	if a := q.Get("after"); a != "" {
		c, err := pinset.ParseCursor(a)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("after: %w", err))
			return
		}
		cur = &c
	}
	limit := -1
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit %.40q: want a positive integer", l))
			return
		}
		limit = n
	}
	format := q.Get("format")
	line, ok := d.pinFormatter(format)
	if !ok {
		httpError(w, http.StatusBadRequest, fmt.Errorf("format %.40q: want %s or %s", format, FormatJSON, FormatTSV))
		return
	}
	if format == FormatTSV {
		w.Header().Set("Content-Type", "text/tab-separated-values; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	flusher, _ := w.(http.Flusher)
	emit := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	var err error
	if limit < 0 {
		// A whole listing: shards listed and formatted in parallel.
		err = d.pins.ListChunks(r.Context(), cur, listWorkers(), line, emit)
	} else {
		err = d.listPage(r.Context(), cur, limit, line, emit)
	}
	if err != nil && r.Context().Err() == nil {
		d.log.Warn("list pins", "err", err)
		if format == FormatTSV {
			_ = emit(appendTSVField([]byte("#error\t"), err.Error()))
			_ = emit([]byte("\n"))
		} else {
			_ = emit(append(appendJSONString([]byte(`{"error":`), err.Error()), "}\n"...))
		}
	}
}

// listWorkers is how many goroutines list and format a whole listing.
func listWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

// listPage lists at most limit pins after cur (from the start when nil)
// in one goroutine, in chunks like ListChunks.
func (d *Daemon) listPage(ctx context.Context, cur *pinset.Cursor, limit int, line pinset.Format, emit func([]byte) error) error {
	var buf []byte
	n := 0
	each := func(p pinset.Pin) error {
		if n == limit {
			return errListLimit
		}
		n++
		if buf = line(buf, p); len(buf) >= 64<<10 {
			err := emit(buf)
			buf = buf[:0]
			return err
		}
		return nil
	}
	var err error
	if cur != nil {
		err = d.pins.ListAfter(ctx, *cur, each)
	} else {
		err = d.pins.List(ctx, each)
	}
	if err != nil && !errors.Is(err, errListLimit) {
		return err
	}
	if len(buf) > 0 {
		return emit(buf)
	}
	return nil
}

// PinJSON is a pin as the API lists it.
type PinJSON struct {
	PinRequest
	Shard int64     `json:"shard"`
	Added time.Time `json:"added"`
	// SizeChecked is the outcome of walking the pin's DAG, for pins whose
	// size was walked or checked: "ok", "pending", "mismatch: walked N",
	// "unreachable" or "failed: <why>" (see SizeCheck).
	SizeChecked string `json:"size_checked,omitempty"`
}

// Cursor is where a listing resumes after this pin: pass it as
// ListOptions.After (?after= in the API).
func (p PinJSON) Cursor() string { return strconv.FormatInt(p.Shard, 10) + "/" + p.CID }

func pinJSON(p pinset.Pin) PinJSON {
	return PinJSON{PinRequest: PinRequest{CID: p.CID.String(), Name: p.Name, Size: p.Size, ReplMin: p.ReplMin, ReplMax: p.ReplMax, Meta: p.Meta},
		Shard: p.Shard, Added: p.Added.UTC()}
}

func (d *Daemon) handleRemovePin(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	n, err := d.pins.Remove(r.Context(), []cid.Cid{c})
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	if n == 0 {
		httpError(w, http.StatusNotFound, fmt.Errorf("%s is not pinned", c))
		return
	}
	if err := d.checks.forget(r.Context(), c); err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	d.poke()
	writeJSON(w, map[string]int{"removed": n})
}

// RemoveResult is the answer to POST /v1/pins/remove.
type RemoveResult struct {
	Removed int `json:"removed"`
	Absent  int `json:"absent"` // not pinned: skipped, so a removal resumes
}

// handleRemovePins unpins the CIDs of the body, one per line (at most
// maxPinBatch), in one CRDT delta batch. CIDs not pinned are counted as
// absent. A line that is not a CID refuses the whole request.
func (d *Daemon) handleRemovePins(w http.ResponseWriter, r *http.Request) {
	var cids []cid.Cid
	sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, maxPinBatch*128))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		if len(cids) == maxPinBatch {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("more than %d CIDs in one request", maxPinBatch))
			return
		}
		c, err := cid.Decode(t)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("line %d: %.80q: %w", line, t, err))
			return
		}
		cids = append(cids, c)
	}
	if err := sc.Err(); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("read the CIDs: %w", err))
		return
	}
	n, err := d.pins.Remove(r.Context(), cids)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	for _, c := range cids {
		if err := d.checks.forget(r.Context(), c); err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
	}
	if n > 0 {
		d.poke()
	}
	writeJSON(w, RemoveResult{Removed: n, Absent: len(cids) - n})
}

func (d *Daemon) handleMembers(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.heads.Newest(); !ok {
		writeJSON(w, []MemberLoad{})
		return
	}
	ms, err := d.MemberLoads(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, ms)
}

func (d *Daemon) handleShards(w http.ResponseWriter, r *http.Request) {
	ss, err := d.Shards(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, ss)
}

func (d *Daemon) handleDecide(w http.ResponseWriter, r *http.Request) {
	id, err := peer.Decode(r.PathValue("peer"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	var state string
	switch r.PathValue("action") {
	case "approve":
		state = StateActive
	case "remove":
		state = StateRemoved
	default:
		httpError(w, http.StatusNotFound, fmt.Errorf("unknown action %q: want approve or remove", r.PathValue("action")))
		return
	}
	if err := d.members.Decide(r.Context(), id, state, d.memberRecord(id).Fails); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownMember) {
			code = http.StatusNotFound
		}
		httpError(w, code, err)
		return
	}
	d.poke()
	writeJSON(w, map[string]string{"peer": id.String(), "state": state})
}

func (d *Daemon) handlePublish(w http.ResponseWriter, r *http.Request) {
	ok, err := d.PublishNow(r.Context(), r.URL.Query().Get("force") == "1")
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, map[string]bool{"published": ok})
}

// TrustRequest is the body of POST /v1/trust.
type TrustRequest struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

func (d *Daemon) handleTrust(w http.ResponseWriter, r *http.Request) {
	var req TrustRequest
	if err := decodeJSON(r, &req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	var change TrustChange
	for _, list := range []struct {
		in  []string
		out *[]peer.ID
	}{{req.Add, &change.Add}, {req.Remove, &change.Remove}} {
		for _, s := range list.in {
			id, err := peer.Decode(s)
			if err != nil {
				httpError(w, http.StatusBadRequest, fmt.Errorf("peer ID %q: %w", s, err))
				return
			}
			*list.out = append(*list.out, id)
		}
	}
	if err := d.ChangeTrust(r.Context(), change); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, d.Status())
}

// decodeJSON reads a small JSON request body strictly.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
