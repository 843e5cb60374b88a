package curator

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// RecordResult is the answer to POST /v1/record: a freshly signed IPNS
// record of the newest head.
type RecordResult struct {
	Head   string    `json:"head"`
	Seq    uint64    `json:"seq"`
	EOL    time.Time `json:"valid_until"`
	Record []byte    `json:"record"` // the raw record (base64 in JSON)
	File   string    `json:"file"`   // the daemon's own record file, also rewritten
}

// ErrNoClusterKey is returned for record signing by a curator that does
// not hold the cluster key.
var ErrNoClusterKey = errors.New("curator: this curator does not hold the cluster key")

// ExportRecord signs a fresh IPNS record of the newest head (what
// 'curate export-record' does while the daemon holds the datastore),
// announces it and rewrites the record file.
func (d *Daemon) ExportRecord(ctx context.Context) (RecordResult, error) {
	if d.l.ClusterKey == nil {
		return RecordResult{}, ErrNoClusterKey
	}
	if _, ok := d.heads.Newest(); !ok {
		return RecordResult{}, errors.New("curator: no verified head yet")
	}
	d.publishMu.Lock()
	err := d.refreshRecord(ctx)
	d.publishMu.Unlock()
	if err != nil {
		return RecordResult{}, err
	}
	rec, ok := d.heads.Record()
	if !ok {
		return RecordResult{}, errors.New("curator: no record after signing one")
	}
	return RecordResult{Head: rec.Head.String(), Seq: rec.Seq, EOL: rec.EOL.UTC(), Record: rec.Raw, File: d.l.Home.RecordPath(d.name)}, nil
}

func (d *Daemon) handleRecord(w http.ResponseWriter, r *http.Request) {
	res, err := d.ExportRecord(r.Context())
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, res)
}

// ExportRecord asks the daemon for a freshly signed record of its newest head.
func (c *Client) ExportRecord(ctx context.Context) (RecordResult, error) {
	var res RecordResult
	return res, c.do(ctx, http.MethodPost, "/v1/record", nil, &res)
}
