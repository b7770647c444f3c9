package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/guest"
)

const (
	// ctlPortName is the name of the virtio-serial port of the control
	// channel (-device virtserialport,name=cnilab.ctl).
	ctlPortName = "cnilab.ctl"
	// portWait is how long the server waits for the port before it says so.
	portWait = 10 * time.Second
	// reopenDelay is the pause between a Serve that returned and the next.
	reopenDelay = 200 * time.Millisecond
)

// findPort returns the /dev path of the virtio-serial port named name, or "".
func findPort(sysDir, name string) string {
	names, _ := filepath.Glob(filepath.Join(sysDir, "vport*", "name"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Join("/dev", filepath.Base(filepath.Dir(n)))
		}
	}
	return ""
}

// serveMain is "/init serve": the control-channel server. It serves the
// host on the cnilab.ctl port, again and again, until SIGTERM or SIGINT.
func serveMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()

	start := time.Now()
	port, warned := "", false
	for port == "" {
		if port = findPort("/sys/class/virtio-ports", ctlPortName); port != "" {
			break
		}
		if !warned && time.Since(start) > portWait {
			logf("control channel: no virtio-serial port named %s after %v (is QEMU given -device virtserialport,name=%s?); the machine stays up without a control channel", ctlPortName, portWait, ctlPortName)
			warned = true
		}
		delay := 50 * time.Millisecond
		if warned {
			delay = time.Second
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(delay):
		}
	}
	logf("control channel: serving on %s", port)

	lastErr := ""
	for ctx.Err() == nil {
		f, err := os.OpenFile(port, os.O_RDWR, 0)
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				logf("control channel: %v", err)
				lastErr = msg
			}
		} else {
			err = guest.Serve(ctx, f)
			f.Close()
			// The host not being connected makes Serve return at once, five
			// times a second: print a failure only when it changes.
			if err != nil && !errors.Is(err, context.Canceled) {
				if msg := err.Error(); msg != lastErr && !strings.Contains(msg, "EOF") {
					logf("control channel: %v", err)
					lastErr = msg
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(reopenDelay):
		}
	}
	return 0
}
