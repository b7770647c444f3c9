//go:build !linux

package probe

import (
	"context"
	"time"
)

// SCTPSupported reports whether this kernel can open an SCTP socket; the probe
// implements SCTP on Linux only.
func SCTPSupported() bool { return false }

type sctpListener struct{ addr string }

func listenSCTP(string, int) (*sctpListener, error) { return nil, ErrSCTPUnsupported }
func (l *sctpListener) accept() (int, error)        { return -1, ErrSCTPUnsupported }
func (l *sctpListener) Close() error                { return nil }
func replySCTP(int, []byte)                         {}

func connectSCTP(_ context.Context, target string, _ time.Duration) (string, error) {
	return "", opError("dial", SCTP, target, ErrSCTPUnsupported)
}
