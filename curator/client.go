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

// RemovePins unpins many CIDs at once (at most 100,000 per call); CIDs
// not pinned come back as Absent.
func (c *Client) RemovePins(ctx context.Context, cids []string) (RemoveResult, error) {
	var body bytes.Buffer
	for _, s := range cids {
		body.WriteString(s)
		body.WriteByte('\n')
	}
	var res RemoveResult
	return res, c.do(ctx, http.MethodPost, "/v1/pins/remove", &body, &res)
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
	body, err := c.listPins(ctx, opt, FormatJSON)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
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

// CopyPins writes the listing's lines to w as the daemon sends them, in
// format (FormatJSON or FormatTSV), without decoding them: the fast way
// to print a large pinset. It returns how many pins it wrote and the
// cursor of the last one ("" when none), which an interrupted listing
// resumes after.
func (c *Client) CopyPins(ctx context.Context, opt ListOptions, format string, w io.Writer) (n int, last string, err error) {
	body, err := c.listPins(ctx, opt, format)
	if err != nil {
		return 0, "", err
	}
	defer body.Close()
	var (
		buf      = make([]byte, 1<<20)
		have     int    // bytes in buf
		lastLine []byte // a copy of the last line written
	)
	for {
		m, rerr := body.Read(buf[have:])
		have += m
		end := bytes.LastIndexByte(buf[:have], '\n') + 1 // complete lines
		for rest := buf[:end]; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			line := rest[:i+1]
			rest = rest[i+1:]
			if msg, ok := listError(line, format); ok {
				return n, cursorOf(lastLine, format), fmt.Errorf("list pins: %s", msg)
			}
			if _, err := w.Write(line); err != nil {
				return n, cursorOf(lastLine, format), err
			}
			n++
			lastLine = append(lastLine[:0], line...)
		}
		have = copy(buf, buf[end:have])
		switch {
		case rerr == io.EOF && have == 0:
			return n, cursorOf(lastLine, format), nil
		case rerr == io.EOF:
			return n, cursorOf(lastLine, format), fmt.Errorf("list pins: the listing ended inside a line")
		case rerr != nil:
			return n, cursorOf(lastLine, format), fmt.Errorf("list pins: %w", rerr)
		case have == len(buf):
			return n, cursorOf(lastLine, format), fmt.Errorf("list pins: a line longer than %d bytes", len(buf))
		}
	}
}

// listError recognises the error line that ends a failed listing.
func listError(line []byte, format string) (string, bool) {
	if format == FormatTSV {
		if rest, ok := bytes.CutPrefix(line, []byte("#error\t")); ok {
			return string(bytes.TrimSpace(rest)), true
		}
		return "", false
	}
	if !bytes.HasPrefix(line, []byte(`{"error"`)) {
		return "", false
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(line, &e) != nil {
		return string(bytes.TrimSpace(line)), true
	}
	return e.Error, true
}

// cursorOf is the cursor of a listed line ("" when it is not one).
func cursorOf(line []byte, format string) string {
	if len(line) == 0 {
		return ""
	}
	if format == FormatTSV {
		f := strings.SplitN(strings.TrimSuffix(string(line), "\n"), "\t", 3)
		if len(f) < 2 {
			return ""
		}
		return f[1] + "/" + f[0]
	}
	var p PinJSON
	if json.Unmarshal(line, &p) != nil {
		return ""
	}
	return p.Cursor()
}

// listPins starts GET /v1/pins and returns the body of a 200 answer.
func (c *Client) listPins(ctx context.Context, opt ListOptions, format string) (io.ReadCloser, error) {
	v := url.Values{}
	if opt.After != "" {
		v.Set("after", opt.After)
	}
	if opt.Limit > 0 {
		v.Set("limit", strconv.Itoa(opt.Limit))
	}
	if format != FormatJSON {
		v.Set("format", format)
	}
	u := c.Base + "/v1/pins"
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDaemonDown, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) == nil && e.Error != "" {
			return nil, fmt.Errorf("list pins: %s", e.Error)
		}
		return nil, fmt.Errorf("list pins: %s", resp.Status)
	}
	return resp.Body, nil
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
