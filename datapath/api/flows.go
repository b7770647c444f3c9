package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Flows queries the agent's flows with the datapath/flows filter parameters
// and calls fn for each JSON line (raw, so callers decode what they need).
// With follow=true in q it streams until ctx ends.
func (c *Client) Flows(ctx context.Context, q url.Values, fn func(line []byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://cnilab-agent"+PathFlows+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	client := *c.http
	client.Timeout = 0 // follow streams
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrAgentUnreachable, c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent: flows: %s (HTTP %d)", strings.TrimSpace(string(b)), resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("agent: flows: %w", err)
	}
	return nil
}

// Metrics returns the agent's Prometheus exposition text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://cnilab-agent"+PathMetrics, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w at %s: %v", ErrAgentUnreachable, c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
