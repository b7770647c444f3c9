package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mode is a netperf-style load test.
type Mode string

// The load modes. Each runs against a cnilab-probe server (see [Serve]):
//
//	TCP_STREAM  one connection, the client sends as fast as it can, the
//	            server counts; Gbit/s of what the server received
//	TCP_RR      one connection, a 1-byte request and a 1-byte response at a time
//	TCP_CRR     per transaction: connect, the server's greeting, a request,
//	            a 1-byte response, the server closes
//	UDP_RR      a 1-byte datagram and the server's name reply at a time; a
//	            reply missing after UDPTimeout is counted lost and the next
//	            request sent
const (
	TCPStream Mode = "TCP_STREAM"
	TCPRR     Mode = "TCP_RR"
	TCPCRR    Mode = "TCP_CRR"
	UDPRR     Mode = "UDP_RR"
)

// Modes lists the load modes in the order reports show them.
var Modes = []Mode{TCPStream, TCPRR, TCPCRR, UDPRR}

// ParseMode accepts a mode name in any case.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToUpper(s))
	if !slices.Contains(Modes, m) {
		return "", fmt.Errorf("unknown load mode %q: want one of %v", s, Modes)
	}
	return m, nil
}

// Unit is what [LoadResult.Value] counts: Gbit/s for TCP_STREAM,
// transactions per second otherwise. Higher is better for both.
func (m Mode) Unit() string {
	if m == TCPStream {
		return "Gbit/s"
	}
	return "trans/s"
}

// UDPTimeout is how long UDP_RR waits for a reply before counting it lost.
const UDPTimeout = 500 * time.Millisecond

// The first line a load client sends after the server's greeting chooses
// the server's side of the test; the server acknowledges with "ok".
const (
	benchStream = "bench stream\n"
	benchRR     = "bench rr\n"
	benchCRR    = "bench crr\n"
	benchAck    = "ok\n"
)

// LoadSpec is one load test.
type LoadSpec struct {
	Mode Mode
	// Target is host:port of a cnilab-probe server (TCP or UDP by Mode).
	Target string
	// Warmup runs the test unmeasured first; Duration is the measured time.
	Warmup, Duration time.Duration
}

// Validate reports a spec that cannot run.
func (s LoadSpec) Validate() error {
	if !slices.Contains(Modes, s.Mode) {
		return fmt.Errorf("unknown load mode %q: want one of %v", s.Mode, Modes)
	}
	if _, _, err := SplitTarget(s.Target); err != nil {
		return err
	}
	if s.Duration <= 0 {
		return fmt.Errorf("duration %s: must be positive", s.Duration)
	}
	if s.Warmup < 0 {
		return fmt.Errorf("warm-up %s: must not be negative", s.Warmup)
	}
	return nil
}

// LoadResult is the measurement of one load test.
type LoadResult struct {
	Mode   Mode   `json:"mode"`
	Target string `json:"target"`
	// Value is the result in Unit: Gbit/s or transactions per second.
	Value        float64 `json:"value"`
	Unit         string  `json:"unit"`
	Seconds      float64 `json:"seconds"`
	Transactions int     `json:"transactions,omitempty"`
	Bytes        int64   `json:"bytes,omitempty"`
	// P50US and P99US are transaction latencies in microseconds (RR modes).
	P50US float64 `json:"p50_us,omitempty"`
	P99US float64 `json:"p99_us,omitempty"`
	// Lost counts UDP_RR requests without a reply.
	Lost  int    `json:"lost,omitempty"`
	Error string `json:"error,omitempty"`
}

// Load runs one load test; a failure is in the result's Error.
func Load(ctx context.Context, spec LoadSpec) LoadResult {
	res := LoadResult{Mode: spec.Mode, Target: spec.Target, Unit: spec.Mode.Unit()}
	if err := spec.Validate(); err != nil {
		res.Error = err.Error()
		return res
	}
	var err error
	switch spec.Mode {
	case TCPStream:
		err = loadStream(ctx, spec, &res)
	case TCPRR:
		err = loadTCPRR(ctx, spec, &res)
	case TCPCRR:
		err = loadCRR(ctx, spec, &res)
	case UDPRR:
		err = loadUDPRR(ctx, spec, &res)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// benchConn dials target, reads the greeting and switches the server to a
// bench mode.
func benchConn(ctx context.Context, target, mode string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, opError("dial", TCP, target, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := handshake(c, mode); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// handshake reads the server's greeting line, sends the mode line and reads
// the acknowledgement, one byte at a time so nothing of what follows is
// buffered here.
func handshake(c net.Conn, mode string) error {
	if _, err := readLine(c); err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	if _, err := io.WriteString(c, mode); err != nil {
		return fmt.Errorf("send mode: %w", err)
	}
	ack, err := readLine(c)
	if err != nil {
		return fmt.Errorf("no acknowledgement of %q: %w", strings.TrimSpace(mode), err)
	}
	if ack+"\n" != benchAck {
		return fmt.Errorf("server answered %q to %q: not a cnilab-probe with load modes", ack, strings.TrimSpace(mode))
	}
	return nil
}

// readLine reads up to a newline without buffering past it.
func readLine(r io.Reader) (string, error) {
	var b [1]byte
	var line []byte
	for len(line) < 256 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", errors.New("line longer than 256 bytes")
}

// measure runs one transaction repeatedly: unmeasured for the warm-up, then
// for the duration, and fills in the count, rate and latency percentiles.
func measure(ctx context.Context, spec LoadSpec, res *LoadResult, one func() (time.Duration, error)) error {
	for end := time.Now().Add(spec.Warmup); time.Now().Before(end) && ctx.Err() == nil; {
		if _, err := one(); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	for end := start.Add(spec.Duration); time.Now().Before(end) && ctx.Err() == nil; {
		l, err := one()
		if err != nil {
			return err
		}
		if l >= 0 {
			lat = append(lat, l)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Transactions = len(lat)
	if res.Seconds > 0 {
		res.Value = float64(len(lat)) / res.Seconds
	}
	res.P50US, res.P99US = percentileUS(lat, 50), percentileUS(lat, 99)
	return ctx.Err()
}

// percentileUS is the p-th percentile of lat in microseconds (nearest rank),
// 0 without samples. It sorts lat.
func percentileUS(lat []time.Duration, p int) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := (len(lat)*p + 99) / 100
	i = min(max(i-1, 0), len(lat)-1)
	return float64(lat[i].Nanoseconds()) / 1000
}

func loadTCPRR(ctx context.Context, spec LoadSpec, res *LoadResult) error {
	c, err := benchConn(ctx, spec.Target, benchRR)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(spec.Warmup + spec.Duration + 10*time.Second))
	req, resp := []byte{'x'}, make([]byte, 1)
	return measure(ctx, spec, res, func() (time.Duration, error) {
		t := time.Now()
		if _, err := c.Write(req); err != nil {
			return 0, fmt.Errorf("request: %w", err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return 0, fmt.Errorf("response: %w", err)
		}
		return time.Since(t), nil
	})
}

func loadCRR(ctx context.Context, spec LoadSpec, res *LoadResult) error {
	resp := make([]byte, 1)
	return measure(ctx, spec, res, func() (time.Duration, error) {
		t := time.Now()
		c, err := benchConn(ctx, spec.Target, benchCRR)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, resp); err != nil {
			return 0, fmt.Errorf("response: %w", err)
		}
		// The server closes first, so TIME_WAIT stays on its side and a
		// long run does not use up the client's ephemeral ports.
		if n, err := c.Read(resp); n != 0 || err != io.EOF {
			return 0, fmt.Errorf("server did not close after its response (read %d, %v)", n, err)
		}
		return time.Since(t), nil
	})
}

func loadUDPRR(ctx context.Context, spec LoadSpec, res *LoadResult) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "udp", spec.Target)
	if err != nil {
		return opError("dial", UDP, spec.Target, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req, buf := []byte{'x'}, make([]byte, 512)
	lost := 0
	err = measure(ctx, spec, res, func() (time.Duration, error) {
		t := time.Now()
		if _, err := c.Write(req); err != nil {
			return 0, opError("send", UDP, spec.Target, err)
		}
		_ = c.SetReadDeadline(t.Add(UDPTimeout))
		if _, err := c.Read(buf); err != nil {
			if isTimeout(err) {
				lost++
				return -1, nil
			}
			return 0, opError("receive", UDP, spec.Target, err)
		}
		return time.Since(t), nil
	})
	res.Lost = lost
	if err == nil && res.Transactions == 0 {
		err = fmt.Errorf("no UDP reply from %s in %s", spec.Target, spec.Duration)
	}
	return err
}

// loadStream sends for the warm-up, then counts what it sends for the
// duration, closes its side and waits for the server's byte count: the time
// runs until the server has received everything, so the rate is what
// arrived, not what the socket buffer took.
func loadStream(ctx context.Context, spec LoadSpec, res *LoadResult) error {
	c, err := benchConn(ctx, spec.Target, benchStream)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(spec.Warmup + spec.Duration + 30*time.Second))
	buf := make([]byte, 128<<10)
	for end := time.Now().Add(spec.Warmup); time.Now().Before(end); {
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	var sent int64
	start := time.Now()
	for end := start.Add(spec.Duration); time.Now().Before(end); {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return fmt.Errorf("close send side: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no byte count from the server: %w", err)
	}
	res.Seconds = time.Since(start).Seconds()
	total, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil || total < sent {
		return fmt.Errorf("server counted %q bytes, sent %d", strings.TrimSpace(line), sent)
	}
	res.Bytes = sent
	res.Value = float64(sent) * 8 / res.Seconds / 1e9
	return nil
}
