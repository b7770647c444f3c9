// Package guest is the public entry to the QEMU guests' control channel for
// cnilab's own programs outside lab/: the guest init serves it (Serve) and the
// host's relay process holds a guest's port (RunRelay). The protocol itself
// lives in lab/internal/guest.
package guest

import (
	"context"
	"fmt"
	"io"
	"strings"

	iguest "github.com/cnilab/cnilab/lab/internal/guest"
)

// Serve answers the host's requests on conn (the guest's virtio-serial port)
// until the host goes away or ctx ends.
func Serve(ctx context.Context, conn io.ReadWriteCloser) error { return iguest.Serve(ctx, conn) }

// InitStatusFile is where the guest init records how boot went; the host
// reads it through the control channel.
const InitStatusFile = iguest.InitStatusFile

// RunRelay holds a guest's control port (QEMU's chardev socket) and serves
// socket; every forward "LISTEN=unix:PATH" or "LISTEN=tcp:HOST:PORT" makes a
// socket of the guest reachable at the host path LISTEN.
func RunRelay(ctx context.Context, port, socket string, forwards []string, log io.Writer) error {
	r := &iguest.Relay{Port: port, Socket: socket, Log: log}
	for _, f := range forwards {
		listen, target, ok := strings.Cut(f, "=")
		network, address, ok2 := strings.Cut(target, ":")
		if !ok || !ok2 || listen == "" || address == "" || (network != "unix" && network != "tcp") {
			return fmt.Errorf("invalid forward %q: want LISTEN=unix:PATH or LISTEN=tcp:HOST:PORT", f)
		}
		r.Forwards = append(r.Forwards, iguest.Forward{Listen: listen, Network: network, Address: address})
	}
	return r.Run(ctx)
}
