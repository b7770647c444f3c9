package probe

import (
	"io"
	"net"
	"strconv"
	"time"
)

// serveBench runs the server's side of a load mode if line chooses one (see
// [Load]) and reports whether it did. The client sends nothing after the
// mode line until the acknowledgement, so c has nothing buffered elsewhere.
func serveBench(c net.Conn, line string) bool {
	switch line {
	case benchStream, benchRR, benchCRR:
	default:
		return false
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, benchAck); err != nil {
		return true
	}
	switch line {
	case benchStream:
		sinkStream(c)
	case benchRR:
		echoBytes(c)
	case benchCRR:
		_, _ = c.Write([]byte{'y'})
	}
	return true
}

// sinkStream reads until the client closes its side, then writes how many
// bytes arrived.
func sinkStream(c net.Conn) {
	buf := make([]byte, 128<<10)
	var total int64
	for {
		_ = c.SetReadDeadline(time.Now().Add(holdIdle))
		n, err := c.Read(buf)
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, strconv.FormatInt(total, 10)+"\n")
}

// echoBytes answers every byte with one byte until the client closes or
// goes idle for holdIdle.
func echoBytes(c net.Conn) {
	b := make([]byte, 1)
	_ = c.SetWriteDeadline(time.Time{})
	for {
		_ = c.SetReadDeadline(time.Now().Add(holdIdle))
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}
