package kubo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// streamErrHeader is the trailer kubo sets when a command fails after its
// reply started.
const streamErrHeader = "X-Stream-Error"

// maxErrorBody bounds the body of a reply with an error status.
const maxErrorBody = 64 << 10

// ClientOptions tune a Client. Zero fields take their defaults.
type ClientOptions struct {
	// HTTPClient sends the requests. Default: a client with no overall
	// timeout (pin add runs as long as the fetch; contexts bound calls).
	HTTPClient *http.Client
	// MaxResponse bounds a reply read as one JSON value. Default: 4 MiB.
	MaxResponse int64
	// MaxLine bounds one value of a streamed reply. Default: 64 KiB.
	MaxLine int
}

// Client is a client of one kubo daemon's RPC API. It is safe for
// concurrent use; it holds no state besides its settings and the HTTP
// client's idle connections.
type Client struct {
	base    string // http://host:port
	hc      *http.Client
	maxResp int64
	maxLine int
}

// NewClient returns a client of the RPC API at api: "http://host:port",
// "host:port", or kubo's own form, a multiaddr such as
// "/ip4/127.0.0.1/tcp/5001". It does no I/O.
func NewClient(api string, opt ClientOptions) (*Client, error) {
	base, err := ParseAPI(api)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, hc: opt.HTTPClient, maxResp: opt.MaxResponse, maxLine: opt.MaxLine}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.maxResp <= 0 {
		c.maxResp = 4 << 20
	}
	if c.maxLine <= 0 {
		c.maxLine = 64 << 10
	}
	return c, nil
}

// ParseAPI checks an API address and returns its base URL
// ("http://127.0.0.1:5001").
func ParseAPI(api string) (string, error) {
	api = strings.TrimSpace(api)
	if strings.HasPrefix(api, "/") {
		return parseMultiaddr(api)
	}
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	u, err := url.Parse(api)
	if err != nil {
		return "", fmt.Errorf("%w: API address %q: %v", ErrInvalid, api, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: API address %q: scheme %q; want http or https", ErrInvalid, api, u.Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("%w: API address %q: want host:port", ErrInvalid, api)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%w: API address %q: want only scheme, host and port", ErrInvalid, api)
	}
	return u.Scheme + "://" + u.Host, nil
}

func parseMultiaddr(s string) (string, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return "", fmt.Errorf("%w: API address %q: %v", ErrInvalid, s, err)
	}
	var host, port string
	for i, c := range m {
		switch {
		case i == 0 && (c.Code() == ma.P_IP4 || c.Code() == ma.P_IP6 || c.Code() == ma.P_DNS ||
			c.Code() == ma.P_DNS4 || c.Code() == ma.P_DNS6):
			host = c.Value()
		case i == 1 && c.Code() == ma.P_TCP:
			port = c.Value()
		case i == 2 && c.Code() == ma.P_HTTP:
		default:
			return "", fmt.Errorf("%w: API address %q: want /ip4|ip6|dns/<host>/tcp/<port>", ErrInvalid, s)
		}
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("%w: API address %q: want /ip4|ip6|dns/<host>/tcp/<port>", ErrInvalid, s)
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// API returns the base URL the client sends to.
func (c *Client) API() string { return c.base }

// post sends one command and returns the reply when its status is 200;
// the caller closes its body. Any other status becomes an *Error.
func (c *Client) post(ctx context.Context, cmd string, args []string, opts url.Values) (*http.Response, error) {
	q := url.Values{}
	for k, v := range opts {
		q[k] = v
	}
	for _, a := range args {
		q.Add("arg", a)
	}
	u := c.base + "/api/v0/" + cmd
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("kubo %s: %w", cmd, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubo %s: %w", cmd, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, errorFrom(cmd, resp)
	}
	return resp, nil
}

// errorFrom reads kubo's error reply: {"Message":..,"Code":..,"Type":"error"},
// or plain text from a proxy or an older daemon.
func errorFrom(cmd string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Command: cmd, Status: resp.StatusCode}
	var v struct {
		Message string
		Code    int
	}
	if json.Unmarshal(body, &v) == nil && v.Message != "" {
		e.Message, e.Code = v.Message, v.Code
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}

// errorValue reports a streamed value that is an error kubo emitted.
func errorValue(cmd string, line []byte) error {
	if !bytes.Contains(line, []byte(`"Type"`)) {
		return nil
	}
	var v struct {
		Message string
		Code    int
		Type    string
	}
	if json.Unmarshal(line, &v) == nil && v.Type == "error" {
		return &Error{Command: cmd, Status: http.StatusOK, Message: v.Message, Code: v.Code}
	}
	return nil
}

// trailerError returns the error kubo put in the trailer; call it only
// after reading the body to its end.
func trailerError(cmd string, resp *http.Response) error {
	if msg := resp.Trailer.Get(streamErrHeader); msg != "" {
		return &Error{Command: cmd, Status: resp.StatusCode, Message: msg}
	}
	return nil
}

// single runs a command whose reply is one JSON value and decodes it into
// out (nil: the reply is read and dropped).
func (c *Client) single(ctx context.Context, cmd string, args []string, opts url.Values, out any) error {
	resp, err := c.post(ctx, cmd, args, opts)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return fmt.Errorf("kubo %s: read reply: %w", cmd, err)
	}
	if int64(len(body)) > c.maxResp {
		return fmt.Errorf("kubo %s: %w: more than %d bytes", cmd, ErrTooLarge, c.maxResp)
	}
	if err := trailerError(cmd, resp); err != nil {
		return err
	}
	if err := errorValue(cmd, body); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("kubo %s: %w: %v", cmd, ErrMalformed, err)
	}
	return nil
}

// stream runs a command whose reply is a sequence of JSON values, one a
// line, and calls fn with each (the slice is valid only during the call).
// A value longer than MaxLine fails the call with ErrTooLarge.
func (c *Client) stream(ctx context.Context, cmd string, args []string, opts url.Values, fn func(line []byte) error) error {
	resp, err := c.post(ctx, cmd, args, opts)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, c.maxLine)
	for {
		line, rerr := br.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			return fmt.Errorf("kubo %s: %w: a value of more than %d bytes", cmd, ErrTooLarge, c.maxLine)
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if err := errorValue(cmd, line); err != nil {
				return err
			}
			if err := fn(line); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return trailerError(cmd, resp)
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("kubo %s: %w", cmd, context.Cause(ctx))
			}
			return fmt.Errorf("kubo %s: read reply: %w", cmd, rerr)
		}
	}
}

func boolOpt(b bool) string { return strconv.FormatBool(b) }
