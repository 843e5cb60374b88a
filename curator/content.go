package curator

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/pinfold/pinfold/content"
)

// AddRequest is the body of POST /v1/add: a path on the daemon's machine.
type AddRequest struct {
	Path string `json:"path"`
	Each bool   `json:"each"` // one pin per direct entry of a folder
	Name string `json:"name,omitempty"`
}

// AddedPin is one pin created by AddContent.
type AddedPin struct {
	CID  string `json:"cid"`
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// AddContent imports a file or folder as UnixFS into the daemon's block
// store and pins the result (one pin, or one per entry with Each).
func (d *Daemon) AddContent(ctx context.Context, req AddRequest) ([]AddedPin, error) {
	abs, err := filepath.Abs(req.Path)
	if err != nil {
		return nil, err
	}
	imported, err := content.Import(ctx, d.node.DAGService(), abs, content.ImportOptions{PerEntry: req.Each})
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", req.Path, err)
	}
	pins := make([]PinRequest, 0, len(imported))
	out := make([]AddedPin, 0, len(imported))
	for _, im := range imported {
		name := im.Path
		if rel, err := filepath.Rel(filepath.Dir(abs), im.Path); err == nil {
			name = rel
		}
		if req.Name != "" && len(imported) == 1 {
			name = req.Name
		}
		pins = append(pins, PinRequest{CID: im.CID.String(), Name: name, Size: im.Size})
		out = append(out, AddedPin{CID: im.CID.String(), Name: name, Size: im.Size})
	}
	if err := d.store.Datastore.Sync(ctx, dsRoot); err != nil {
		return nil, err
	}
	if _, err := d.AddPins(ctx, pins); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *Daemon) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	if err := decodeJSON(r, &req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	res, err := d.AddContent(r.Context(), req)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, res)
}
