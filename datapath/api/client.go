package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrAgentUnreachable is returned when nothing answers on the agent socket.
var ErrAgentUnreachable = errors.New("cnilab agent unreachable")

// Client talks to an agent over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Node returns the node's network facts.
func (c *Client) Node(ctx context.Context) (NodeInfo, error) {
	var n NodeInfo
	err := c.do(ctx, http.MethodGet, PathNode, nil, &n)
	return n, err
}

// PutEndpoint registers (or updates) an endpoint.
func (c *Client) PutEndpoint(ctx context.Context, ep Endpoint) error {
	return c.do(ctx, http.MethodPut, PathEndpoints+"/"+ep.ContainerID, ep, nil)
}

// DeleteEndpoint removes an endpoint; a missing one is not an error.
func (c *Client) DeleteEndpoint(ctx context.Context, containerID string) error {
	return c.do(ctx, http.MethodDelete, PathEndpoints+"/"+containerID, nil, nil)
}

// Endpoints lists the registered endpoints.
func (c *Client) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var eps []Endpoint
	err := c.do(ctx, http.MethodGet, PathEndpoints, nil, &eps)
	return eps, err
}

// Status returns the agent's status document.
func (c *Client) Status(ctx context.Context, out any) error {
	return c.do(ctx, http.MethodGet, PathStatus, nil, out)
}

// MapEntries returns the number of entries in each of the agent's state
// maps (conntrack, endpoints, ipcache, policy, …) by map name.
func (c *Client) MapEntries(ctx context.Context) (map[string]int, error) {
	var out map[string]int
	err := c.do(ctx, http.MethodGet, PathMaps, nil, &out)
	return out, err
}

// Conntrack lists the connections the agent's datapath tracks.
func (c *Client) Conntrack(ctx context.Context) ([]ConntrackEntry, error) {
	var out []ConntrackEntry
	err := c.do(ctx, http.MethodGet, PathConntrack, nil, &out)
	return out, err
}

// Healthz asks the agent whether it is ready: datapath loaded and node state
// reconciled. Not ready is not an error: detail then says why. When nothing
// answers the error wraps ErrAgentUnreachable.
func (c *Client) Healthz(ctx context.Context) (ready bool, detail string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://cnilab-agent"+PathHealthz, nil)
	if err != nil {
		return false, "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, "", fmt.Errorf("%w at %s: %v", ErrAgentUnreachable, c.socket, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	detail = string(bytes.TrimSpace(b))
	switch resp.StatusCode {
	case http.StatusOK:
		return true, detail, nil
	case http.StatusServiceUnavailable:
		return false, detail, nil
	}
	return false, detail, fmt.Errorf("agent: GET %s: HTTP %d: %s", PathHealthz, resp.StatusCode, detail)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://cnilab-agent"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrAgentUnreachable, c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = string(bytes.TrimSpace(b))
		}
		return fmt.Errorf("agent: %s %s: %s (HTTP %d)", method, path, e.Message, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("agent: %s %s: decode: %w", method, path, err)
	}
	return nil
}
