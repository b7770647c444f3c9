// Package guest is the control channel between the lab on the host and the
// init of a QEMU guest: the host runs commands in the guest, starts and
// restarts its daemons, reads and writes its files, and dials sockets inside
// it.
//
// The channel is one virtio-serial port carrying a yamux session; every
// request is one yamux stream. On the host a relay (Relay) holds the port and
// turns every connection to a unix socket into one stream, so any number of
// host processes (the suite, `cnilab lab exec`) can use one guest at a time.
// A stream starts with one JSON request line; the reply is one JSON line,
// except for "dial", after whose reply the stream carries raw bytes.
package guest

import (
	"encoding/json"
	"fmt"
	"io"
)

// Operations a request can ask for.
const (
	OpPing    = "ping"    // guest facts: kernel release, init status
	OpExec    = "exec"    // run a command to completion
	OpStart   = "start"   // start a named daemon
	OpRestart = "restart" // signal a named daemon, wait for it, start it again
	OpStop    = "stop"    // signal a named daemon and wait for it
	OpResume  = "resume"  // start a stopped daemon again as it was
	OpWrite   = "write"   // write a file (parents made)
	OpRead    = "read"    // read a file
	OpDial    = "dial"    // connect to a socket in the guest, then relay bytes
)

// Request is the first line of every stream.
type Request struct {
	Op      string   `json:"op"`
	Name    string   `json:"name,omitempty"`    // daemon name (start, restart, stop, resume)
	Argv    []string `json:"argv,omitempty"`    // exec, start
	Env     []string `json:"env,omitempty"`     // extra environment (exec, start)
	Netns   string   `json:"netns,omitempty"`   // named netns to run in (exec, start); empty: the guest's own
	Path    string   `json:"path,omitempty"`    // write, read
	Mode    uint32   `json:"mode,omitempty"`    // write
	Data    []byte   `json:"data,omitempty"`    // write
	Signal  int      `json:"signal,omitempty"`  // restart, stop
	Network string   `json:"network,omitempty"` // dial: unix or tcp
	Address string   `json:"address,omitempty"` // dial
	Timeout float64  `json:"timeout,omitempty"` // exec: seconds, 0 for none
}

// Reply is the answer line.
type Reply struct {
	Error    string `json:"error,omitempty"`
	NotExist bool   `json:"notExist,omitempty"` // read: the file does not exist
	Stdout   []byte `json:"stdout,omitempty"`
	Stderr   []byte `json:"stderr,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
	Pid      int    `json:"pid,omitempty"`
	Data     []byte `json:"data,omitempty"`
	// Ping.
	Release    string          `json:"release,omitempty"`
	InitStatus json.RawMessage `json:"initStatus,omitempty"`
}

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readLine reads one JSON line without reading past it, so that the bytes
// after a dial reply stay in the stream.
func readLine(r io.Reader, v any) error {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
			if len(line) > 64<<20 {
				return fmt.Errorf("control channel: line too long")
			}
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) == 0 {
				return io.EOF
			}
			return fmt.Errorf("control channel: %w", err)
		}
	}
	return json.Unmarshal(line, v)
}
