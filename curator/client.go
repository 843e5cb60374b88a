package curator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client talks to a curator daemon's HTTP API.
type Client struct {
	Base  string // e.g. http://127.0.0.1:9650
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for the daemon of a loaded home.
func NewClient(l *Loaded) *Client {
	return &Client{Base: "http://" + l.Config.API, Token: l.Config.APIToken, HTTP: &http.Client{}}
}

// ErrDaemonDown is returned when no daemon answers at the API address.
var ErrDaemonDown = errors.New("curator: daemon is not running (start it with 'curate daemon')")

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			return fmt.Errorf("%w: %v", ErrDaemonDown, err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// AddPins sends one batch of pins, with no options: AddPinsWith.
func (c *Client) AddPins(ctx context.Context, pins []PinRequest) (PinResult, error) {
	return c.AddPinsWith(ctx, pins, PinOptions{})
}

// AddPinsWith sends one batch of pins; opt says how the daemon walks the
// pins without a size and whether it checks the others (see
// Daemon.AddPinsWith). Walks can take up to opt's timeout per pin.
func (c *Client) AddPinsWith(ctx context.Context, pins []PinRequest, opt PinOptions) (PinResult, error) {
	if err := opt.validate(); err != nil {
		return PinResult{}, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, p := range pins {
		if err := enc.Encode(p); err != nil {
			return PinResult{}, err
		}
	}
	var res PinResult
	return res, c.do(ctx, http.MethodPost, "/v1/pins"+opt.query(), &buf, &res)
}

// RemovePin unpins one CID.
func (c *Client) RemovePin(ctx context.Context, cidStr string) error {
	return c.do(ctx, http.MethodDelete, "/v1/pins/"+cidStr, nil, nil)
}

// ListOptions page a listing: After resumes after a pin (its cursor,
// "<shard>/<cid>", from PinJSON.Cursor), Limit stops after that many pins
// (0: no limit).
type ListOptions struct {
	After string
	Limit int
}

// ListPins streams the pins to fn, in shard, then CID order.
func (c *Client) ListPins(ctx context.Context, opt ListOptions, fn func(PinJSON) error) error {
	v := url.Values{}
	if opt.After != "" {
		v.Set("after", opt.After)
	}
	if opt.Limit > 0 {
		v.Set("limit", strconv.Itoa(opt.Limit))
	}
	u := c.Base + "/v1/pins"
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDaemonDown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) == nil && e.Error != "" {
			return fmt.Errorf("list pins: %s", e.Error)
		}
		return fmt.Errorf("list pins: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte(`{"error"`)) {
			return fmt.Errorf("list pins: %s", strings.TrimSpace(string(line)))
		}
		var p PinJSON
		if err := json.Unmarshal(line, &p); err != nil {
			return fmt.Errorf("list pins: %w", err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Shards lists every shard with its holders and ACKs.
func (c *Client) Shards(ctx context.Context) ([]ShardInfo, error) {
	var s []ShardInfo
	return s, c.do(ctx, http.MethodGet, "/v1/shards", nil, &s)
}

// Members lists the members with their commitments.
func (c *Client) Members(ctx context.Context) ([]MemberLoad, error) {
	var m []MemberLoad
	return m, c.do(ctx, http.MethodGet, "/v1/members", nil, &m)
}

// Decide approves or removes a member ("approve" or "remove").
func (c *Client) Decide(ctx context.Context, peerID, action string) error {
	return c.do(ctx, http.MethodPost, "/v1/members/"+peerID+"/"+action, nil, nil)
}

// Publish asks for a head now.
func (c *Client) Publish(ctx context.Context, force bool) (bool, error) {
	var out struct{ Published bool }
	path := "/v1/publish"
	if force {
		path += "?force=1"
	}
	return out.Published, c.do(ctx, http.MethodPost, path, nil, &out)
}

// ChangeTrust adds and removes curator keys with a new head.
func (c *Client) ChangeTrust(ctx context.Context, req TrustRequest) (Status, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Status{}, err
	}
	var s Status
	return s, c.do(ctx, http.MethodPost, "/v1/trust", bytes.NewReader(body), &s)
}

// AddContent imports a file or folder on the daemon's machine and pins it.
func (c *Client) AddContent(ctx context.Context, req AddRequest) ([]AddedPin, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out []AddedPin
	return out, c.do(ctx, http.MethodPost, "/v1/add", bytes.NewReader(body), &out)
}
